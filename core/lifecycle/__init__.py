"""Application and allocation (申请与分配): the intake form, pre-check rules, the lifecycle state
machine, the feasibility checklist, persistence and the services pages and the CLI call."""
