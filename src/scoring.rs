//! Placement decisions: feasibility, fragmentation and the policies that score nodes.
