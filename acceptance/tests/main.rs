//! Every integration test of the crate in one binary, a module per file: the scenarios on the
//! embedded target, the install paths, the facade's component tests, the sandbox, and the
//! upstream target (whose shared stack starts once for the binary).

mod embedded;
mod install;
mod kubeadm;
mod sandbox;
mod upstream;
