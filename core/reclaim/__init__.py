"""Warnings (预警) and reclaim (资源回收): pure rules, persistence, services and the daily job."""
