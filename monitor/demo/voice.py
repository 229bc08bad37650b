"""The demo's citizens' voice: ratings.csv (好差评) and complaints.csv (效能投诉).

About a third of the cases decided are rated a few days later, almost all 基本满意 to
非常满意. Planted, each with its own id in ``planted.json``:

* ``bad_rating``: 差评 on clean cases, tagged with the reasons GB/T 39734 lists most
  often (办事指南之外增加新的审批条件 …) — and the two below;
* ``rating_contradiction``: a 差评 tagged 无理由超过法定办理时间 on a case decided on time,
  and a fee complaint (违规收费) on a case paid online with no fee finding;
* look-alikes that are 差评 and complaints but no contradictions (listed under
  ``details.not_contradictions``): a 差评 tagged overdue on a planted overdue case, and a
  fee complaint on the planted unpaid-certificate case;
* ``complaint``: every complaint (none has reached a stage: nobody acted in the demo).

A random stream of its own: the other files stay exactly as they were without it.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .county import County
from .window import AS_OF

RATING_HEADER = ("rating_id", "case_id", "item_code", "department", "rated_at", "channel",
                 "score", "tags", "text")
COMPLAINT_HEADER = ("complaint_id", "received_at", "channel", "department", "case_id",
                    "category", "text")
CHANNELS = ("窗口", "网上", "移动端")
BAD_TAGS = ("办事指南之外增加新的审批条件", "需提供办事指南之外的申报材料", "工作人员服务态度差",
            "多次跑动")
OVERDUE_TAG = "无理由超过法定办理时间"
RATED_SHARE = 0.3


def _ended(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """case id → its department, item, when it was decided, whether paid online."""
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for e in events:
        c = out[e["case_id"]]
        c.setdefault("department", e["department"])
        c.setdefault("item_code", e["item_code"])
        if e["step"] in ("decide", "complete"):
            c["ended"] = max(c.get("ended", e["occurred_at"]), e["occurred_at"])
        if e["step"] == "fee_paid" and e.get("channel") == "online":
            c["paid_online"] = True
    return {k: v for k, v in out.items() if "ended" in v}


def write_voice(directory: Path, county: County, events: list[dict[str, Any]], seed: int
                ) -> tuple[dict[str, Path], dict[str, Any]]:
    """Write ratings.csv and complaints.csv; returns the files and what was planted."""
    rng = random.Random(f"{seed}-voice")
    ended = _ended(events)
    kinds = {c.case_id: c.kind for c in county.cases}
    clean = sorted(k for k, c in ended.items() if kinds.get(k) is None
                   and c["ended"] + timedelta(days=4) < AS_OF)
    ratings: list[dict[str, Any]] = []
    complaints: list[dict[str, Any]] = []
    planted: dict[str, list[str]] = {"bad_rating": [], "rating_contradiction": [],
                                     "complaint": []}
    controls: dict[str, list[str]] = {"overdue_rating_not_contradiction": [],
                                      "fee_complaint_not_contradiction": []}

    def rate(case_id: str, score: int, tags: tuple[str, ...] = (), text: str = "") -> str:
        c = ended[case_id]
        rid = f"PJ-{len(ratings) + 1:05d}"
        at = c["ended"] + timedelta(hours=rng.randint(2, 72))
        ratings.append({"rating_id": rid, "case_id": case_id, "item_code": c["item_code"],
                        "department": c["department"], "rated_at": at.isoformat(),
                        "channel": rng.choice(CHANNELS), "score": score,
                        "tags": ";".join(tags), "text": text})
        return rid

    def complain(case_id: str | None, department: str, category: str, text: str,
                 at: datetime) -> str:
        cid = f"TS-{len(complaints) + 1:04d}"
        complaints.append({"complaint_id": cid, "received_at": at.isoformat(),
                           "channel": rng.choice(("12345", "窗口", "信访")),
                           "department": department, "case_id": case_id or "",
                           "category": category, "text": text})
        return cid

    picks = rng.sample(clean, k=min(len(clean), 6))
    for case_id in sorted(set(clean) - set(picks)):
        if rng.random() < RATED_SHARE:
            rate(case_id, rng.choice((3, 4, 4, 5, 5, 5)))
    for case_id, tag in zip(picks[:4], BAD_TAGS):
        planted["bad_rating"].append(rate(case_id, rng.choice((1, 2)), (tag,), "办事不顺"))
    if len(picks) > 4:  # a 差评 saying "overdue" on a case decided on time
        rid = rate(picks[4], 1, (OVERDUE_TAG,), "等了很久")
        planted["bad_rating"].append(rid)
        planted["rating_contradiction"].append(f"rating:{rid}")
    late = [c.case_id for k in ("overdue_promised", "overdue_legal")
            for c in county.planted.get(k, []) if c.case_id in ended]
    if late:  # the same words on a case that was overdue: no contradiction
        rid = rate(late[0], 1, (OVERDUE_TAG,), "超期未办结")
        planted["bad_rating"].append(rid)
        controls["overdue_rating_not_contradiction"].append(rid)
    # complaints: one about attitude, two about fees
    dept = ended[picks[0]]["department"] if picks else county.items[0].department
    planted["complaint"].append(complain(None, dept, "服务态度", "窗口人员态度生硬",
                                         AS_OF - timedelta(days=20)))
    paid = [k for k in clean if ended[k].get("paid_online") and k not in picks]
    if paid:
        c = ended[paid[0]]
        cid = complain(paid[0], c["department"], "违规收费", "收费与公示标准不符",
                       c["ended"] + timedelta(days=1))
        planted["complaint"].append(cid)
        planted["rating_contradiction"].append(f"complaint:{cid}")
    unpaid = [c.case_id for c in county.planted.get("unpaid_certificate", [])]
    if unpaid and unpaid[0] in ended:
        c = ended[unpaid[0]]
        cid = complain(unpaid[0], c["department"], "违规收费", "未见网上缴费即发证",
                       c["ended"] + timedelta(days=1))
        planted["complaint"].append(cid)
        controls["fee_complaint_not_contradiction"].append(cid)
    files = {"ratings": directory / "ratings.csv", "complaints": directory / "complaints.csv"}
    for name, rows, header in (("ratings", ratings, RATING_HEADER),
                               ("complaints", complaints, COMPLAINT_HEADER)):
        with open(files[name], "w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(sorted(rows, key=lambda r: r.get("rated_at") or r["received_at"]))
    return files, {"anomalies": planted, "controls": controls}
