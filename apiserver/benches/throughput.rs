//! Throughput of the embedded API server, through its HTTP router in-process: simple writes per
//! second, watch events per second fanned out to 10 watchers, and list latency over 10k objects.
//! Prints its figures; run with `make bench-apiserver`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use axum::body::Body;
use futures::StreamExt;
use http::{Method, Request};
use kany8s_apiserver::Server;
use serde_json::json;
use tower::ServiceExt;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

async fn post(router: axum::Router, name: String) {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}});
    let request = Request::builder()
        .method(Method::POST)
        .uri(CMS)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let _ = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
}

/// Creates `count` ConfigMaps from `workers` concurrent tasks; returns the elapsed time.
async fn write_burst(server: &Server, prefix: &str, count: usize, workers: usize) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let router = server.router();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (w..count).step_by(workers) {
                post(router.clone(), format!("{prefix}-{i}")).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

async fn writes_per_second() -> f64 {
    let server = Server::builder().history(1_000).build();
    let count = 20_000;
    let elapsed = write_burst(&server, "w", count, 4).await;
    count as f64 / elapsed.as_secs_f64()
}

async fn fan_out_events_per_second() -> f64 {
    let server = Server::builder().history(100_000).build();
    let watchers = 10;
    let count = 10_000;
    let rv = server.engine().resource_version();
    let mut readers = Vec::new();
    for _ in 0..watchers {
        let request = Request::builder()
            .uri(format!("{CMS}?watch=true&resourceVersion={rv}"))
            .body(Body::empty())
            .unwrap();
        let response = server.router().oneshot(request).await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut stream = response.into_body().into_data_stream();
            let mut seen = 0usize;
            while seen < count {
                let chunk = stream.next().await.unwrap().unwrap();
                seen += chunk.iter().filter(|b| **b == b'\n').count();
            }
            Instant::now()
        }));
    }
    let started = Instant::now();
    write_burst(&server, "f", count, 4).await;
    let mut last = started;
    for r in readers {
        last = last.max(r.await.unwrap());
    }
    (watchers * count) as f64 / (last - started).as_secs_f64()
}

async fn list_latency() -> (Duration, Duration) {
    let server = Server::builder().history(1_000).build();
    write_burst(&server, "l", 10_000, 4).await;
    let mut samples = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let request = Request::builder().uri(CMS).body(Body::empty()).unwrap();
        let response = server.router().oneshot(request).await.unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(bytes.len() > 10_000 * 50);
        samples.push(started.elapsed());
    }
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let writes = writes_per_second().await;
        println!("apiserver bench: simple writes (ConfigMap create, 4 clients): {writes:.0} writes/s (goal >= 20000)");
        let events = fan_out_events_per_second().await;
        println!("apiserver bench: watch events delivered to 10 watchers: {events:.0} events/s (goal >= 100000)");
        let (median, max) = list_latency().await;
        println!("apiserver bench: list of 10k ConfigMaps: median {:.1} ms, max {:.1} ms", median.as_secs_f64() * 1e3, max.as_secs_f64() * 1e3);
    });
}
