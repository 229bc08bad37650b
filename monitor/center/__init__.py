"""What the control center's pages and API show, computed below the web layer.

Each function takes the acting :class:`~monitor.authz.Actor` and ``now`` and returns plain
data; what the actor may see is decided by monitor/authz.py, what the state of an alert
allows by monitor/supervision.py. The web package only parses, calls one of these, and
renders: ``listing`` (the queue, alert lists, the API's list), ``board`` (总览), ``detail``
(an alert, a case), ``overview`` (rules and exemptions), ``evidence`` (evidence as
sentences) and ``labels`` (Chinese and English).
"""
