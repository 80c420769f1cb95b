//! The differential suite in `cargo test`: fails on any unexplained difference. It needs the
//! upstream binaries (`make upstream`, which `make test` runs first); without them it skips,
//! loudly, unless `CI` is set, where it fails.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_server_matches_kube_apiserver() {
    if let Err(missing) = acceptance::upstream::built() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set and the upstream binaries are missing: {missing}"
        );
        eprintln!("SKIPPED: {missing}");
        return;
    }
    let filter = std::env::var("FIDELITY_FILTER").ok();
    let report = fidelity::suite::run(filter.as_deref())
        .await
        .unwrap_or_else(|e| panic!("the differential suite could not run: {e}"));
    println!("{}", report.table());
    assert!(
        !report.failed(),
        "{}\n\n{}",
        report.table(),
        report.differences()
    );
}
