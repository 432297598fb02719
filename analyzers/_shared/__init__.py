"""What two or more analyzers share: the LRP composites and canonizers (lrp, lrp_pruning: ``lrp``,
``canonizers``), the randomization control (``randomization``), the torch.fx leaf tracer and graph-op
vocabulary (``tracing``), BatchNorm helpers (``batchnorm``), rank correlation (``stats``) and the
``Findings`` an analyzer's pieces return (``findings``)."""
