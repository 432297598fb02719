"""What two or more analyzers share: the LRP composites and canonizers (lrp, lrp_pruning), the
randomization control, the torch.fx tracer, BatchNorm helpers and rank correlation."""
