//! HTTP front end: parses Kubernetes paths, queries and media types, calls the engine and
//! renders responses (objects, lists, Status errors, Tables, watch streams).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

mod params;

pub use self::params::{Query, parse_go_duration};
use self::params::{
    body_write_options, content_type, delete_options, list_options, options_kind, patch_type,
    percent_decode, user_agent_manager, write_options,
};
use crate::discovery;
use crate::engine::{Engine, ListOptions, Outcome, PatchType, Target};
use crate::registry::{Kind, Registry};
use crate::status::{ApiError, FieldError};
use crate::table::{self, IncludeObject};
use crate::watch::{self, Rendering, WatchRequest};

/// Shared state of the HTTP layer.
#[derive(Debug)]
pub struct Frontend {
    pub engine: Arc<Engine>,
    pub settings: Settings,
    pub faults: crate::faults::Faults,
    /// Present when access recording is on.
    pub access: Option<crate::access::AccessLog>,
}

/// Behaviour switches of the HTTP layer.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `sendInitialEvents` support (on, as in Kubernetes 1.32).
    pub watch_list: bool,
    pub bookmark_interval: Duration,
    /// `host:port` the server is reachable at, for `/api`.
    pub address: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            watch_list: true,
            bookmark_interval: Duration::from_secs(60),
            address: "127.0.0.1:6443".into(),
        }
    }
}

const DISCOVERY_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const DISCOVERY_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// What the client accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accept {
    Json,
    Table,
    Partial,
    PartialList,
}

fn media_params(entry: &str) -> (String, HashMap<String, String>) {
    let mut parts = entry.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (media, params)
}

fn negotiate(headers: &HeaderMap) -> Result<Accept, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Accept::Json);
    }
    for entry in accept.split(',') {
        let (media, params) = media_params(entry);
        match media.as_str() {
            "application/json" | "*/*" | "application/*" | "application/yaml" => {
                return Ok(match params.get("as").map(String::as_str) {
                    Some("Table") => Accept::Table,
                    Some("PartialObjectMetadata") => Accept::Partial,
                    Some("PartialObjectMetadataList") => Accept::PartialList,
                    _ => Accept::Json,
                });
            }
            _ => {}
        }
    }
    Err(ApiError::not_acceptable(
        "only the following media types are accepted: application/json, application/yaml",
    ))
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for warning in warnings {
        let escaped = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

pub fn error_response(error: &ApiError) -> Response {
    json_response(error.code, &error.to_status(), &[])
}

fn text_response(text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The route of a request path.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Version,
    Health,
    Api,
    Apis,
    ApiGroup(String),
    GroupVersion(String, String),
    OpenApiRoot,
    OpenApi(String, String),
    Faults,
    Resource(ResourcePath),
    Unknown,
}

#[derive(Debug, PartialEq, Eq)]
struct ResourcePath {
    group: String,
    version: String,
    rest: Vec<String>,
}

fn route(path: &str) -> Route {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["api"] => Route::Api,
        ["apis"] => Route::Apis,
        ["api", "v1"] => Route::GroupVersion(String::new(), "v1".into()),
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["_sandbox", "faults"] => Route::Faults,
        ["openapi", "v3", "api", version] => Route::OpenApi(String::new(), (*version).into()),
        ["openapi", "v3", "apis", group, version] => {
            Route::OpenApi((*group).into(), (*version).into())
        }
        ["apis", group] => Route::ApiGroup((*group).into()),
        ["apis", group, version] => Route::GroupVersion((*group).into(), (*version).into()),
        ["api", "v1", rest @ ..] => Route::Resource(ResourcePath {
            group: String::new(),
            version: "v1".into(),
            rest: rest.iter().map(|x| x.to_string()).collect(),
        }),
        ["apis", group, version, rest @ ..] => Route::Resource(ResourcePath {
            group: (*group).into(),
            version: (*version).into(),
            rest: rest.iter().map(|x| x.to_string()).collect(),
        }),
        _ => Route::Unknown,
    }
}

impl Frontend {
    /// Handles one HTTP request.
    pub async fn handle(
        self: Arc<Self>,
        method: Method,
        uri: http::Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let query = Query::parse(uri.query());
        let is_watch = query.flag("watch") || uri.path().contains("/watch/");
        let access = self.access.as_ref().and_then(|log| {
            let (verb, group, resource) =
                crate::access::classify(&method, uri.path(), query.flag("watch"))?;
            let user = headers
                .get("impersonate-user")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("anonymous")
                .to_string();
            let metadata_only = headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(crate::access::metadata_only);
            let access = crate::access::Access {
                user,
                verb,
                group,
                resource,
                metadata_only,
            };
            log.record(access.clone());
            Some(access)
        });
        let deadline = query
            .get("timeout")
            .and_then(parse_go_duration)
            .filter(|_| !is_watch);
        let is_patch = method == Method::PATCH;
        let frontend = self.clone();
        let work = self.respond(method, uri, headers, body, query);
        let response = match deadline {
            Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
                error_response(&ApiError::new(504, "Timeout", "Timeout: request did not complete within requested timeout - context deadline exceeded"))
            }),
            None => work.await,
        };
        // kube-apiserver authorizes a patch that creates its object (server-side apply of a
        // new object) for `create` as well as `patch`.
        if is_patch
            && response.status() == http::StatusCode::CREATED
            && let Some(access) = access
            && let Some(log) = &frontend.access
        {
            log.record(crate::access::Access {
                verb: "create".into(),
                ..access
            });
        }
        response
    }

    async fn respond(
        self: Arc<Self>,
        method: Method,
        uri: http::Uri,
        headers: HeaderMap,
        body: Bytes,
        query: Query,
    ) -> Response {
        if let Some(error) = self.faults.before_request(&method).await {
            return error_response(&error);
        }
        let result = match route(uri.path()) {
            Route::Version => Ok(json_response(200, &version(), &[])),
            Route::Health => Ok(text_response("ok")),
            Route::Api => Ok(self.discovery_response(&headers, true)),
            Route::Apis => Ok(self.discovery_response(&headers, false)),
            Route::ApiGroup(group) => self
                .engine
                .with_registry(|registry| discovery::api_group(registry, &group))
                .map(|d| json_response(200, &d, &[]))
                .ok_or_else(ApiError::unknown_path),
            Route::GroupVersion(group, version) => self
                .engine
                .with_registry(|registry| discovery::resource_list(registry, &group, &version))
                .map(|d| json_response(200, &d, &[]))
                .ok_or_else(ApiError::unknown_path),
            Route::Faults if method == Method::POST => self.configure_faults(&body),
            Route::Faults => Err(ApiError::method_not_allowed()),
            Route::OpenApiRoot => Ok(json_response(
                200,
                &self.engine.with_registry(crate::openapi::root),
                &[],
            )),
            Route::OpenApi(group, version) => self.openapi(&group, &version, &query),
            Route::Resource(path) => self.resource(method, path, &query, &headers, body).await,
            Route::Unknown => Err(ApiError::unknown_path()),
        };
        result.unwrap_or_else(|e| error_response(&e))
    }

    fn discovery_response(&self, headers: &HeaderMap, core: bool) -> Response {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut aggregated = None;
        for entry in accept.split(',') {
            let (media, params) = media_params(entry);
            if media == "application/json"
                && params.get("g").map(String::as_str) == Some("apidiscovery.k8s.io")
                && params.get("as").map(String::as_str) == Some("APIGroupDiscoveryList")
            {
                match params.get("v").map(String::as_str) {
                    Some("v2") => {
                        aggregated = Some(("apidiscovery.k8s.io/v2", DISCOVERY_V2));
                        break;
                    }
                    Some("v2beta1") if aggregated.is_none() => {
                        aggregated = Some(("apidiscovery.k8s.io/v2beta1", DISCOVERY_V2BETA1))
                    }
                    _ => {}
                }
            }
        }
        match aggregated {
            Some((api_version, content_type)) => {
                let body = self
                    .engine
                    .with_registry(|registry| discovery::aggregated(registry, core, api_version));
                let mut response = json_response(200, &body, &[]);
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                response
            }
            None if core => {
                json_response(200, &discovery::api_versions(&self.settings.address), &[])
            }
            None => json_response(
                200,
                &self.engine.with_registry(discovery::api_group_list),
                &[],
            ),
        }
    }

    /// `POST /_sandbox/faults`: sets fault knobs from JSON (`failNthWrite: {n, code}`,
    /// `failWrites: {conflicts, errors}`, `latencyMs`, `dropWatches`, `expireNextWatch`, `compact`).
    fn configure_faults(&self, body: &[u8]) -> Result<Response, ApiError> {
        let request: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid fault request: {e}")))?;
        let faults = &self.faults;
        if let Some(nth) = request.get("failNthWrite") {
            let n = nth.get("n").and_then(Value::as_u64).ok_or_else(|| {
                ApiError::bad_request("failNthWrite.n must be a positive integer")
            })?;
            let code = nth
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(500);
            faults.fail_nth_write(n, code);
        }
        if let Some(ratios) = request.get("failWrites") {
            let ratio = |key: &str| ratios.get(key).and_then(Value::as_f64).unwrap_or(0.0);
            faults.fail_writes(ratio("conflicts"), ratio("errors"));
        }
        if let Some(ms) = request.get("latencyMs").and_then(Value::as_u64) {
            faults.latency(Duration::from_millis(ms));
        }
        if request.get("dropWatches").and_then(Value::as_bool) == Some(true) {
            faults.drop_watches();
        }
        if let Some(plural) = request.get("expireNextWatch").and_then(Value::as_str) {
            faults.expire_next_watch(plural);
        }
        if let Some(rv) = request.get("compact").and_then(Value::as_u64) {
            self.engine.compact(rv);
        }
        Ok(json_response(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
            &[],
        ))
    }

    /// A group-version document; a stale `hash` redirects to the current one.
    fn openapi(&self, group: &str, version: &str, query: &Query) -> Result<Response, ApiError> {
        let document = self
            .engine
            .with_registry(|registry| {
                crate::openapi::group_version_document(registry, group, version)
            })
            .ok_or_else(ApiError::unknown_path)?;
        let hash = crate::openapi::hash(&document);
        let key = crate::openapi::path_key(group, version);
        match query.get("hash") {
            Some(requested) if requested != hash => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
                let location = format!("/openapi/v3/{key}?hash={hash}");
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                Ok(response)
            }
            requested => {
                let mut response = json_response(200, &document, &[]);
                if let Ok(etag) = HeaderValue::from_str(&format!("\"{hash}\"")) {
                    response.headers_mut().insert(header::ETAG, etag);
                }
                if requested.is_some() {
                    response.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, immutable"),
                    );
                    let expires = k8s_openapi::jiff::Timestamp::now()
                        + k8s_openapi::jiff::SignedDuration::from_hours(24 * 365);
                    if let Ok(value) = HeaderValue::from_str(
                        &expires.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                    ) {
                        response.headers_mut().insert(header::EXPIRES, value);
                    }
                }
                Ok(response)
            }
        }
    }

    fn target(&self, path: &ResourcePath) -> Result<(Target, bool), ApiError> {
        self.engine
            .with_registry(|registry| resolve_target(registry, path))
    }

    async fn resource(
        &self,
        method: Method,
        path: ResourcePath,
        query: &Query,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response, ApiError> {
        let (target, watch_path) = self.target(&path)?;
        let accept = negotiate(headers)?;
        let engine = &self.engine;
        let is_watch = watch_path || query.flag("watch");
        if target.subresource.as_deref() == Some("scale") {
            return self.scale(&method, target, query, headers, &body);
        }
        match (
            &method,
            target.name.is_some(),
            target.subresource.as_deref(),
        ) {
            (&Method::GET, false, _) if is_watch => self.watch(target, query, accept),
            (&Method::GET, false, _) => {
                if accept == Accept::Partial {
                    return Err(ApiError::not_acceptable(
                        "you requested PartialObjectMetadata, but the requested object is a list",
                    ));
                }
                let options = list_options(query)?;
                self.wait_for_resource_version(&options).await?;
                let list = engine.list(&target, &options)?;
                Ok(json_response(
                    200,
                    &render_list(&target, list, accept, query),
                    &[],
                ))
            }
            (&Method::GET, true, _) if is_watch => self.watch(target, query, accept),
            (&Method::POST, false, None) => {
                // kube-apiserver names the manager after the User-Agent when none is given.
                let mut options = body_write_options(query, options_kind(&method), headers, &body)?;
                if options.field_manager.is_none() {
                    options.field_manager = user_agent_manager(headers);
                }
                let body = decode_body(headers, &body, &target)?;
                let outcome = engine.create(&target, body, &options)?;
                Ok(outcome_response(outcome))
            }
            (&Method::DELETE, false, None) => {
                let options = delete_options(query, &body)?;
                Ok(outcome_response(engine.delete_collection(
                    &target,
                    &list_options(query)?,
                    &options,
                )?))
            }
            (&Method::GET, true, sub) if sub != Some("finalize") => {
                let object = engine.get(&target)?;
                Ok(json_response(
                    200,
                    &render_object(&target, object, accept, query),
                    &[],
                ))
            }
            (&Method::PUT, true, Some("finalize")) => {
                let body = decode_body(headers, &body, &target)?;
                let mut current = engine.get(&Target {
                    subresource: None,
                    ..target.clone()
                })?;
                current["spec"]["finalizers"] = body
                    .pointer("/spec/finalizers")
                    .cloned()
                    .unwrap_or(json!([]));
                let main = Target {
                    subresource: None,
                    ..target.clone()
                };
                Ok(outcome_response(engine.replace(
                    &main,
                    current,
                    &write_options(query, options_kind(&method))?,
                )?))
            }
            (&Method::PUT, true, _) => {
                let mut options = body_write_options(query, options_kind(&method), headers, &body)?;
                if options.field_manager.is_none() {
                    options.field_manager = user_agent_manager(headers);
                }
                let body = decode_body(headers, &body, &target)?;
                Ok(outcome_response(engine.replace(&target, body, &options)?))
            }
            (&Method::PATCH, true, sub) if sub != Some("finalize") => {
                let patch_type = patch_type(headers)?;
                let mut options = body_write_options(query, options_kind(&method), headers, &body)?;
                if options.field_manager.is_none() && patch_type != PatchType::Apply {
                    options.field_manager = user_agent_manager(headers);
                }
                Ok(outcome_response(
                    engine.patch(&target, patch_type, &body, &options)?,
                ))
            }
            (&Method::DELETE, true, None) => {
                let options = delete_options(query, &body)?;
                Ok(outcome_response(engine.delete(&target, &options)?))
            }
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    /// The `/scale` subresource: an `autoscaling/v1 Scale` view of the replica paths.
    fn scale(
        &self,
        method: &Method,
        target: Target,
        query: &Query,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response, ApiError> {
        let Some(paths) = target.resource.scale.clone() else {
            return Err(ApiError::unknown_path());
        };
        let main = Target {
            subresource: None,
            ..target
        };
        let pointer = |path: &str| path.replace('.', "/");
        let to_scale = |object: &Value| -> Result<Value, ApiError> {
            let replicas = object.pointer(&pointer(&paths.spec_replicas_path)).cloned().ok_or_else(|| {
                ApiError::internal("InternalError", format!("Internal error occurred: the spec replicas field \"{}\" does not exist", paths.spec_replicas_path))
            })?;
            let status_replicas = object
                .pointer(&pointer(&paths.status_replicas_path))
                .cloned()
                .unwrap_or(json!(0));
            let mut status = json!({"replicas": status_replicas});
            if let Some(selector) = paths
                .label_selector_path
                .as_deref()
                .and_then(|p| object.pointer(&pointer(p)))
            {
                status["selector"] = selector.clone();
            }
            let metadata = &object["metadata"];
            Ok(json!({
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": metadata["name"], "namespace": metadata["namespace"], "uid": metadata["uid"],
                             "resourceVersion": metadata["resourceVersion"], "creationTimestamp": metadata["creationTimestamp"]},
                "spec": {"replicas": replicas},
                "status": status,
            }))
        };
        let current = self.engine.get(&main)?;
        let desired = match *method {
            Method::GET => return Ok(json_response(200, &to_scale(&current)?, &[])),
            Method::PUT => decode_body(headers, body, &main)?,
            Method::PATCH => {
                let mut scale = to_scale(&current)?;
                let patch: Value = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                match patch_type(headers)? {
                    PatchType::Json => {
                        scale = crate::patch::json_patch(&scale, &patch)
                            .map_err(|_| ApiError::patch_rejected())?
                    }
                    _ => crate::patch::merge_patch(&mut scale, &patch),
                }
                scale
            }
            _ => return Err(ApiError::method_not_allowed()),
        };
        let replicas = desired
            .pointer("/spec/replicas")
            .cloned()
            .unwrap_or(json!(0));
        let mut update = json!({});
        let segments: Vec<&str> = paths
            .spec_replicas_path
            .trim_start_matches('.')
            .split('.')
            .collect();
        let mut node = &mut update;
        for (i, segment) in segments.iter().enumerate() {
            node[*segment] = if i + 1 == segments.len() {
                replicas.clone()
            } else {
                json!({})
            };
            node = &mut node[*segment];
        }
        if let Some(rv) = desired
            .pointer("/metadata/resourceVersion")
            .filter(|rv| rv.as_str().is_some_and(|r| !r.is_empty()))
        {
            update["metadata"] = json!({"resourceVersion": rv});
        }
        let outcome = self.engine.patch(
            &main,
            PatchType::Merge,
            update.to_string().as_bytes(),
            &write_options(query, "UpdateOptions")?,
        )?;
        Ok(json_response(
            200,
            &to_scale(&outcome.body)?,
            &outcome.warnings,
        ))
    }

    /// A list at a resourceVersion newer than the server's waits up to 3 s, then E31.
    async fn wait_for_resource_version(&self, options: &ListOptions) -> Result<(), ApiError> {
        let Some(requested) = options
            .resource_version
            .as_deref()
            .and_then(|rv| rv.parse::<u64>().ok())
        else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let current = self.engine.resource_version();
            if requested <= current {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::too_large_resource_version(requested, current));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn watch(
        &self,
        mut target: Target,
        query: &Query,
        accept: Accept,
    ) -> Result<Response, ApiError> {
        let mut list = list_options(query)?;
        if let Some(name) = target.name.take() {
            let selector = format!("metadata.name={name}");
            list.field_selector = Some(match list.field_selector {
                Some(existing) if !existing.is_empty() => format!("{existing},{selector}"),
                _ => selector,
            });
        }
        let send_initial_events = query.flag("sendInitialEvents");
        if send_initial_events && !self.settings.watch_list {
            return Err(ApiError::invalid_options(
                "ListOptions",
                &FieldError::forbidden(
                    "sendInitialEvents",
                    "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
                ),
            ));
        }
        if send_initial_events && list.resource_version_match.as_deref() != Some("NotOlderThan") {
            return Err(ApiError::invalid_options(
                "ListOptions",
                &FieldError::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ),
            ));
        }
        let timeout = match query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
        {
            Some(seconds) => Duration::from_secs(seconds),
            None => Duration::from_secs(1800 + u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 7),
        };
        let rendering = match accept {
            Accept::Table => Rendering::Table,
            Accept::Partial | Accept::PartialList => Rendering::PartialObjectMetadata,
            Accept::Json => Rendering::Full,
        };
        let request = WatchRequest {
            resource: target.resource.clone(),
            version: target.version.clone(),
            namespace: target.namespace.clone(),
            list,
            allow_bookmarks: query.flag("allowWatchBookmarks"),
            timeout,
            send_initial_events,
            bookmark_interval: self.settings.bookmark_interval,
            rendering,
        };
        let expire = self.faults.take_expire(&target.resource.plural);
        let receiver = watch::start(
            self.engine.clone(),
            request,
            expire,
            self.faults.drop_signal(),
        )?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        let body = Body::from_stream(futures::StreamExt::map(
            stream,
            Ok::<Bytes, std::convert::Infallible>,
        ));
        let mut response = Response::new(body);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }
}

/// The target a resource path names (and whether it is a `/watch/` path), from the registry.
fn resolve_target(registry: &Registry, path: &ResourcePath) -> Result<(Target, bool), ApiError> {
    let mut rest: &[String] = &path.rest;
    let watch_path = rest.first().map(String::as_str) == Some("watch");
    if watch_path {
        rest = &rest[1..];
    }
    let namespaced = rest.len() >= 3
        && rest[0] == "namespaces"
        && registry
            .lookup(&path.group, &path.version, &rest[2])
            .is_some_and(|t| t.namespaced);
    let (namespace, plural, name, subresource) = if namespaced {
        if rest.len() > 5 {
            return Err(ApiError::unknown_path());
        }
        (
            Some(rest[1].clone()),
            rest[2].clone(),
            rest.get(3).cloned(),
            rest.get(4).cloned(),
        )
    } else {
        if rest.is_empty() || rest.len() > 3 {
            return Err(ApiError::unknown_path());
        }
        (
            None,
            rest[0].clone(),
            rest.get(1).cloned(),
            rest.get(2).cloned(),
        )
    };
    let resource = registry
        .lookup(&path.group, &path.version, &plural)
        .ok_or_else(ApiError::unknown_path)?;
    if resource.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::unknown_path());
    }
    if let Some(sub) = &subresource {
        let known = (sub == "status" && resource.status_subresource)
            || (sub == "scale" && resource.scale.is_some())
            || (sub == "finalize" && resource.kind == Kind::Namespace);
        if !known {
            return Err(ApiError::unknown_path());
        }
    }
    Ok((
        Target {
            resource,
            version: path.version.clone(),
            namespace,
            name,
            subresource,
        },
        watch_path,
    ))
}

fn version() -> Value {
    json!({"major": "1", "minor": "32", "gitVersion": "v1.32.13", "gitCommit": "kany8s-embedded",
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.6",
           "compiler": "gc", "platform": "linux/amd64"})
}

fn render_object(target: &Target, object: Value, accept: Accept, query: &Query) -> Value {
    match accept {
        Accept::Table => table::table(
            &target.resource,
            &target.version,
            &[object],
            true,
            include_object(query),
        ),
        Accept::Partial | Accept::PartialList => table::partial_object_metadata(&object),
        Accept::Json => object,
    }
}

fn include_object(query: &Query) -> IncludeObject {
    match query.get("includeObject") {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    }
}

fn render_list(target: &Target, list: Value, accept: Accept, query: &Query) -> Value {
    match accept {
        Accept::Json | Accept::Partial => list,
        Accept::PartialList => {
            let items: Vec<Value> = list["items"]
                .as_array()
                .map(|i| i.iter().map(table::partial_object_metadata).collect())
                .unwrap_or_default();
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list["metadata"], "items": items})
        }
        Accept::Table => {
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let mut t = table::table(
                &target.resource,
                &target.version,
                &items,
                true,
                include_object(query),
            );
            t["metadata"] = list["metadata"].clone();
            t
        }
    }
}

fn outcome_response(outcome: Outcome) -> Response {
    json_response(outcome.code, &outcome.body, &outcome.warnings)
}

fn decode_body(headers: &HeaderMap, body: &[u8], target: &Target) -> Result<Value, ApiError> {
    let value: Value = match content_type(headers).as_str() {
        "" | "application/json" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/yaml" => yaml_serde::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?,
        "application/vnd.kubernetes.protobuf" => {
            crate::protobuf::decode(body, &target.resource.kind_name)?
        }
        _ => {
            return Err(ApiError::unsupported_media_type(&[
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf",
            ]));
        }
    };
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/version"), Route::Version);
        assert_eq!(
            route("/api/v1"),
            Route::GroupVersion(String::new(), "v1".into())
        );
        assert_eq!(route("/apis/kro.run"), Route::ApiGroup("kro.run".into()));
        assert!(matches!(
            route("/apis/kro.run/v1alpha1/namespaces/a/x"),
            Route::Resource(_)
        ));
        assert_eq!(route("/nope"), Route::Unknown);
    }
}
