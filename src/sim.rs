//! Deterministic trace replay: the FGD placement protocol over a simulated cluster.
