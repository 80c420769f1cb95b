//! An embedded, in-memory, Kubernetes-compatible API server for tests and the local sandbox.
