"""The demo county's catalog: departments, staff and power items, as tables and ``Item``s."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

CENT = Decimal("0.01")

DEPARTMENTS = (
    ("YJJ", "应急管理局"), ("SHJ", "生态环境局"), ("SJJ", "市场监督管理局"),
    ("ZRJ", "自然资源局"), ("ZJJ", "住房和城乡建设局"), ("CGJ", "城市管理局"),
    ("JTJ", "交通运输局"), ("WJW", "卫生健康委员会"), ("MZJ", "民政局"),
    ("NYJ", "农业农村局"), ("SLJ", "水利局"), ("JW", "县纪委监委"),
)
L, P, O = "license", "penalty", "other"
# (name, category, promised, legal, fee, flags S=survey C=certificate, weight, extra file)
ITEMS: dict[str, tuple] = {
    "YJJ": (("危险化学品经营许可证核发", L, 10, 20, 0, "SC", 3, "安全评价报告"),
            ("烟花爆竹经营（零售）许可证核发", L, 10, 20, 0, "SC", 3, None),
            ("生产经营单位生产安全事故应急预案备案", O, 3, 20, 0, "", 2, "应急预案"),
            ("安全生产违法行为行政处罚", P, 30, 60, 0, "S", 2, None)),
    "SHJ": (("建设项目环境影响报告表审批", L, 10, 20, 0, "C", 4, "环境影响报告表"),
            ("建设项目环境影响报告书审批", L, 20, 20, 0, "SC", 1, "环境影响报告书"),
            ("建设项目环境影响登记表备案", O, 0, 0, 0, "", 3, None),
            ("环境违法行为行政处罚", P, 30, 60, 0, "S", 2, None)),
    "SJJ": (("食品经营许可", L, 10, 20, 0, "SC", 8, None),
            ("个体工商户设立登记", L, 0, 0, 0, "C", 10, None),
            ("企业设立登记", L, 3, 15, 0, "C", 6, None),
            ("药品零售企业经营许可", L, 15, 20, 0, "SC", 2, None),
            ("特种设备使用登记", O, 5, 15, 0, "C", 2, None),
            ("市场监管领域行政处罚", P, 30, 60, 0, "S", 3, None)),
    "ZRJ": (("建设用地规划许可证核发", L, 10, 20, 0, "SC", 2, None),
            ("乡村建设规划许可证核发", L, 10, 20, 0, "SC", 3, None),
            ("不动产登记（住宅）", O, 5, 30, 80, "C", 10, "不动产权属来源证明"),
            ("不动产登记（非住宅）", O, 5, 30, 550, "C", 3, "不动产权属来源证明"),
            ("临时用地审批", L, 15, 20, 0, "S", 1, None),
            ("自然资源违法行为行政处罚", P, 30, 60, 0, "S", 1, None)),
    "ZJJ": (("建筑工程施工许可证核发", L, 7, 15, 0, "C", 4, None),
            ("商品房预售许可", L, 10, 10, 0, "SC", 1, None),
            ("建筑业企业资质核准（施工总承包三级）", L, 15, 20, 0, "C", 1, None),
            ("城市建筑垃圾处置核准", L, 5, 20, 0, "C", 2, None),
            ("燃气经营许可", L, 20, 20, 0, "SC", 1, None),
            ("住房城乡建设领域行政处罚", P, 30, 60, 0, "S", 1, None)),
    "CGJ": (("违反市容环境卫生管理规定的处罚", P, 30, 60, 0, "S", 6, None),
            ("违法建设行为的处罚", P, 30, 60, 0, "S", 4, None),
            ("擅自占用、挖掘城市道路的处罚", P, 30, 60, 0, "S", 3, None),
            ("违反城市绿化管理规定的处罚", P, 30, 60, 0, "S", 2, None),
            ("城市管理当场处罚（简易程序）", P, 0, 0, 0, "", 6, None),
            ("城市道路挖掘许可", L, 5, 20, 1200, "SC", 2, "施工方案"),
            ("临时占用城市道路许可", L, 3, 20, 600, "SC", 2, None),
            ("户外广告设施设置许可", L, 5, 20, 0, "SC", 2, "设计效果图")),
    "JTJ": (("道路货物运输经营许可", L, 10, 20, 0, "C", 4, None),
            ("道路旅客运输经营许可", L, 15, 20, 0, "SC", 1, None),
            ("出租汽车驾驶员从业资格注册", O, 3, 10, 0, "C", 3, None),
            ("公路超限运输许可", L, 1, 5, 0, "C", 3, "车货总体轮廓图"),
            ("道路运输违法行为行政处罚", P, 30, 60, 0, "S", 3, None)),
    "WJW": (("公共场所卫生许可", L, 10, 20, 0, "SC", 5, None),
            ("医疗机构执业登记", L, 20, 45, 0, "SC", 1, None),
            ("放射诊疗许可", L, 20, 20, 0, "SC", 1, None),
            ("医师执业注册", L, 10, 20, 0, "C", 3, None),
            ("卫生健康行政处罚", P, 30, 60, 0, "S", 2, None)),
    "MZJ": (("社会团体成立登记", L, 20, 60, 0, "SC", 1, "章程草案"),
            ("民办非企业单位成立登记", L, 20, 60, 0, "SC", 1, "章程草案"),
            ("婚姻登记", O, 0, 0, 0, "C", 8, None),
            ("最低生活保障审批", O, 15, 30, 0, "S", 3, "家庭经济状况核对报告"),
            ("殡葬服务设施建设审批", L, 15, 20, 0, "SC", 1, None)),
    "NYJ": (("农药经营许可", L, 10, 20, 0, "SC", 2, None),
            ("兽药经营许可证核发", L, 10, 20, 0, "SC", 1, None),
            ("农作物种子生产经营许可证核发", L, 10, 20, 0, "SC", 1, None),
            ("农村村民宅基地审批", L, 15, 20, 0, "SC", 4, None),
            ("动物防疫条件合格证核发", L, 10, 20, 0, "SC", 1, None),
            ("农业行政处罚", P, 30, 60, 0, "S", 1, None)),
    "SLJ": (("取水许可", L, 20, 45, 0, "SC", 1, "水资源论证报告"),
            ("河道管理范围内建设项目工程建设方案审批", L, 15, 20, 0, "S", 1, None),
            ("生产建设项目水土保持方案审批", L, 10, 20, 0, "C", 1, "水土保持方案"),
            ("河道采砂许可", L, 10, 20, 5000, "SC", 1, None),
            ("水行政处罚", P, 30, 60, 0, "S", 1, None)),
}
HAZCHEM, EIA, SOCIETY = "XK-YJJ-001", "XK-SHJ-001", "XK-MZJ-001"
HOLIDAY_ITEM, MAKEUP_ITEM = "XK-WJW-001", "XK-SJJ-001"
SURVEY_REPORT = "现场踏勘意见书"
FINES = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
FINE_WEIGHTS = (2, 6, 8, 10, 10, 8, 6, 4, 2, 1)
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏"
            "吕丁沈姚卢崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严戴孔汤")
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文斌辉玲海燕红波宁鹏飞宇浩晨阳雪梅志丹"
STAFF = (("clerk", 3), ("chief", 2), ("deputy", 1), ("principal", 1), ("monitor_l1", 1))
ALL_IN_ONE = "shj-clerk-3"  # the window clerk who was given every approval right (seed story)


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    department: str
    category: str
    promised: int
    legal: int
    fee: Decimal
    survey: bool
    certificate: bool
    weight: int
    min_minutes: dict[str, int]
    min_case_minutes: int
    attachments: dict[str, list[str]]

    @property
    def on_spot(self) -> bool:
        return self.legal == 0


def _item(dept: str, n: int, row: tuple) -> Item:
    name, cat, promised, legal, fee, flags, weight, extra = row
    prefix = {L: "XK", P: "CF", O: "QT"}[cat]
    survey = "S" in flags
    if legal == 0:
        mins, case_min = {"decide": 3}, 5
    else:
        mins = {"survey": 30} if survey else {}
        mins |= {"review": 20 if dept == "SHJ" and cat == L else 10, "approve": 5, "decide": 5}
        case_min = {L: 240 if dept == "SHJ" else 120, P: 240, O: 60}[cat]
    if cat == P:
        files = {"accept": ["立案审批表"], "survey": ["现场检查笔录", "调查询问笔录"],
                 "decide": ["行政处罚决定书"]}
        if legal == 0:
            files = {"decide": ["当场处罚决定书"]}
    else:
        files = {"accept": ["申请书" if cat == L else "申请表", "申请人身份证明"]}
        if survey:
            files["survey"] = [SURVEY_REPORT]
        if cat == L:
            files["decide"] = ["准予行政许可决定书"]
    if extra:
        files["accept"] = files["accept"] + [extra]
    return Item(f"{prefix}-{dept}-{n:03d}", name, dept, cat, promised, legal, Decimal(fee),
                survey, "C" in flags, weight, mins, case_min, files)


def catalog_items() -> list[Item]:
    return [_item(dept, n, row) for dept, rows in ITEMS.items()
            for n, row in enumerate(rows, start=1)]


def draw_staff(rng: random.Random) -> tuple[list[dict], dict[str, dict[str, list[str]]]]:
    """Users for the catalog, and department → role → user ids for the generator."""
    users: list[dict] = []
    staff: dict[str, dict[str, list[str]]] = {}
    for dept, _ in DEPARTMENTS:
        roles = (("monitor_l2", 2),) if dept == "JW" else STAFF
        staff[dept] = {}
        for role, count in roles:
            for k in range(1, count + 1):
                uid = f"{dept.lower()}-{role.split('_')[0]}" + (f"-{k}" if count > 1 else "")
                granted = ["clerk", "chief", "deputy", "principal"] if uid == ALL_IN_ONE else [role]
                name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
                phone = f"100{rng.randrange(10 ** 8):08d}"  # no mobile uses 100: never real
                users.append({"id": uid, "name": name, "department": dept, "roles": granted,
                              "phone": phone})
                staff[dept].setdefault(role, []).append(uid)
    return users, staff
