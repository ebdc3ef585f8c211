"""The identities the service tests act as: one or more of every role, HQ and Jiangsu."""

from __future__ import annotations

from core.identity import ROLE_MENU, Identity

APPLICANT = Identity("zhang.wei", "张伟", "zhang.wei@example.com", "applicant", department="数字化部")
COLLEAGUE = Identity("chen.jie", "陈杰", "chen.jie@example.com", "applicant", department="数字化部")
OTHER_DEPT = Identity("liu.yang", "刘洋", "liu.yang@example.com", "applicant", department="营销部")
EXPLORER = Identity("ma.lin", "马琳", "ma.lin@example.com", "applicant", department="调度控制中心")
JS_APPLICANT = Identity("xu.js", "徐江", "xu.js@example.com", "applicant", department="江苏信通公司", province="JS")
HQ_OPS = Identity("li.na", "李娜", "li.na@example.com", "hq_ops", department="算力运营中心")
PROV_OPS = Identity("zhou.js", "周江", "zhou.js@example.com", "prov_ops", department="江苏信通公司", province="JS",
                    level="L1")
PROV_L2 = Identity("wu.js", "吴江", "wu.js@example.com", "prov_ops", department="江苏信通公司", province="JS",
                   level="L2")
PROV_L2_B = Identity("qin.js", "秦江", "qin.js@example.com", "prov_ops", department="江苏信通公司", province="JS",
                     level="L2")
DEPT_HEAD = Identity("he.dh", "何主任", "he.dh@example.com", "dept_head", department="数字化部")
OTHER_HEAD = Identity("gao.dh", "高主任", "gao.dh@example.com", "dept_head", department="营销部")
COMMITTEE = Identity("qian.c", "钱委员", "qian.c@example.com", "committee")
EXEC = Identity("wang.qiang", "王强", "wang.qiang@example.com", "executive", department="公司领导")
ADMIN = Identity("zhao.min", "赵敏", "zhao.min@example.com", "admin", department="信息通信分公司")
BY_ROLE = {"applicant": COLLEAGUE, "prov_ops": PROV_OPS, "hq_ops": HQ_OPS, "dept_head": DEPT_HEAD,
           "committee": COMMITTEE, "executive": EXEC, "admin": ADMIN}
assert set(BY_ROLE) == set(ROLE_MENU)
