"""Dynamic adjustment (动态调整): the queue with aging, preemption and defragmentation
simulations, dual-threshold autoscaling policies and the adjustment record (ITSM/CMDB)."""
