//! Kany8s acceptance: the simulated Cluster API core, the sandbox and the scenario runners.
