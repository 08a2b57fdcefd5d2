//! The kube-scheduler extender wire format (`k8s.io/kube-scheduler/extender/v1`).
//!
//! The upstream Go types carry no JSON tags, so their keys are the Go field names in
//! PascalCase, nothing is `omitempty` (absent lists and maps are `null`), and Go's decoder
//! matches keys ignoring case (upstream's `TestCompatibility` checks an all-lowercase body
//! decodes the same). The embedded Pod and Node objects are ordinary camelCase core/v1 JSON
//! without `apiVersion`/`kind`.
//!
//! Requests are parsed borrowing from the body: in `Nodes` mode each Node stays the exact
//! bytes the scheduler sent, so a filter answer returns them untouched (no field a newer
//! Kubernetes added is lost in a round trip), and only the few fields tessera reads are
//! decoded (see [`object`]).

pub mod object;
mod strict;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use object::{NodeObject, PodObject};
use strict::Strict;

/// Most nodes one request may carry. kube-scheduler sends at most the feasible nodes of one
/// cycle (≤ 5,000 in a cluster at the 5,000-node scalability threshold with
/// `percentageOfNodesToScore: 100`); three times that leaves room for larger clusters.
pub const MAX_NODES: usize = 15_000;
/// Longest node name Kubernetes accepts (a DNS subdomain).
pub const MAX_NODE_NAME_LEN: usize = 253;
/// `MaxExtenderPriority` of the extender API: scores must lie in `0..=10`.
pub const MAX_EXTENDER_PRIORITY: i64 = 10;
/// `MinExtenderPriority` of the extender API.
pub const MIN_EXTENDER_PRIORITY: i64 = 0;

/// Why a request body is not an `ExtenderArgs` tessera can answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Not JSON, truncated, or a field of the wrong type.
    #[error("malformed ExtenderArgs: {0}")]
    Json(String),
    /// The body has no `Pod`.
    #[error("malformed ExtenderArgs: no Pod")]
    NoPod,
    /// More nodes than [`MAX_NODES`].
    #[error("request carries {count} nodes; at most {MAX_NODES} are accepted")]
    TooManyNodes {
        /// Nodes in the request.
        count: usize,
    },
    /// A node without a name, or with a name longer than [`MAX_NODE_NAME_LEN`].
    #[error("node #{index} has {problem}")]
    BadNodeName {
        /// Position in the request.
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
}

/// One node of a request: its name, the fields tessera reads, and in `Nodes` mode its exact
/// JSON for echoing back.
#[derive(Debug, Clone)]
pub struct RequestNode<'a> {
    /// The node's name.
    pub name: Cow<'a, str>,
    /// The Node object as sent (`Nodes` mode only).
    pub raw: Option<&'a RawValue>,
    /// Labels, annotations, taints and deletion state (`Nodes` mode only).
    pub object: Option<NodeObject>,
}

/// `ExtenderArgs`: what kube-scheduler posts to `filter` and `prioritize`.
#[derive(Debug, Clone)]
pub struct ExtenderArgs<'a> {
    /// The pod being scheduled.
    pub pod: PodObject,
    /// The candidate nodes, in request order.
    pub nodes: Vec<RequestNode<'a>>,
    /// Whether the scheduler sent node names (`nodeCacheCapable: true`) rather than objects;
    /// it wants the same form back.
    pub names_mode: bool,
}

impl<'a> ExtenderArgs<'a> {
    /// Parses a request body, borrowing node names and objects from it.
    pub fn parse(body: &'a [u8]) -> Result<Self, ApiError> {
        let mut decoder = serde_json::Deserializer::from_slice(body);
        let wire: ArgsWire<'a> =
            serde_path_to_error::deserialize(&mut decoder).map_err(|e| json_error("", &e))?;
        decoder
            .end()
            .map_err(|e| ApiError::Json(format!("after the object: {e}")))?;
        let pod = wire.pod.ok_or(ApiError::NoPod)?;
        let names_mode = wire.node_names.is_some();
        let mut nodes = Vec::new();
        if let Some(names) = wire.node_names {
            check_count(names.len())?;
            nodes.reserve(names.len());
            for (index, Text(name)) in names.into_iter().enumerate() {
                check_name(index, &name)?;
                nodes.push(RequestNode {
                    name,
                    raw: None,
                    object: None,
                });
            }
        } else if let Some(items) = wire.nodes.and_then(|list| list.items) {
            check_count(items.len())?;
            nodes.reserve(items.len());
            for (index, raw) in items.into_iter().enumerate() {
                let mut decoder = serde_json::Deserializer::from_str(raw.get());
                let object: NodeObject = serde_path_to_error::deserialize(&mut decoder)
                    .map_err(|e| json_error(&format!("Nodes.items[{index}]"), &e))?;
                check_name(index, &object.name)?;
                nodes.push(RequestNode {
                    name: Cow::Owned(object.name.clone()),
                    raw: Some(raw),
                    object: Some(object),
                });
            }
        }
        Ok(ExtenderArgs {
            pod,
            nodes,
            names_mode,
        })
    }
}

/// A decoding error that names the field (`Pod.spec.containers[0].resources`), as Go's
/// decoder does ("cannot unmarshal array into Go struct field ...").
fn json_error(prefix: &str, error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let field = match (prefix.is_empty(), path.as_str()) {
        (true, ".") => String::new(),
        (true, _) => path,
        (false, ".") => prefix.to_owned(),
        (false, _) => format!("{prefix}.{path}"),
    };
    if field.is_empty() {
        ApiError::Json(error.inner().to_string())
    } else {
        ApiError::Json(format!("field {field}: {}", error.inner()))
    }
}

fn check_count(count: usize) -> Result<(), ApiError> {
    if count > MAX_NODES {
        return Err(ApiError::TooManyNodes { count });
    }
    Ok(())
}

fn check_name(index: usize, name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::BadNodeName {
            index,
            problem: "no name",
        });
    }
    if name.len() > MAX_NODE_NAME_LEN {
        return Err(ApiError::BadNodeName {
            index,
            problem: "a name longer than 253 bytes",
        });
    }
    Ok(())
}

/// The request as it is on the wire; keys matched ignoring ASCII case, as Go does.
struct ArgsWire<'a> {
    pod: Option<PodObject>,
    nodes: Option<NodeListWire<'a>>,
    node_names: Option<Vec<Text<'a>>>,
}

/// `v1.NodeList`; only `items` matters.
#[derive(Deserialize)]
struct NodeListWire<'a> {
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ArgsWire<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ArgsVisitor(std::marker::PhantomData))
    }
}

struct ArgsVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ArgsVisitor<'a> {
    type Value = ArgsWire<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ExtenderArgs object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut out = ArgsWire {
            pod: None,
            nodes: None,
            node_names: None,
        };
        // Like Go's decoder: a repeated key overwrites, unknown keys are skipped.
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let key = key.as_ref();
            if key.eq_ignore_ascii_case("Pod") {
                out.pod = map.next_value::<Option<Strict<PodObject>>>()?.map(|p| p.0);
            } else if key.eq_ignore_ascii_case("Nodes") {
                out.nodes = map
                    .next_value::<Option<Strict<NodeListWire<'a>>>>()?
                    .map(|l| l.0);
            } else if key.eq_ignore_ascii_case("NodeNames") {
                out.node_names = map.next_value()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// A string borrowed from the body unless it contains escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// `ExtenderFilterResult`: the nodes that pass, and why the others do not.
///
/// Serialised with upstream's keys in upstream's order; empty maps and absent lists are
/// `null`, except that a names-mode answer always carries `NodeNames` (an empty list when no
/// node passes), as the scheduler reads a `null` there as "no node passes" only by accident.
#[derive(Debug, Clone, Default)]
pub struct FilterResult<'a> {
    /// Passing nodes as objects (`Nodes` mode).
    pub nodes: Option<Vec<&'a RawValue>>,
    /// Passing node names (names mode).
    pub node_names: Option<Vec<&'a str>>,
    /// Nodes rejected for a reason preemption could fix.
    pub failed_nodes: BTreeMap<&'a str, String>,
    /// Nodes rejected for a reason preemption cannot fix.
    pub failed_and_unresolvable_nodes: BTreeMap<&'a str, String>,
    /// A request-level error (the scheduler treats the whole call as failed).
    pub error: String,
}

impl FilterResult<'_> {
    /// The answer to a request that could not be read.
    pub fn error(message: impl Into<String>) -> FilterResult<'static> {
        FilterResult {
            error: message.into(),
            ..FilterResult::default()
        }
    }
}

impl Serialize for FilterResult<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ExtenderFilterResult", 5)?;
        s.serialize_field(
            "Nodes",
            &self.nodes.as_ref().map(|items| NodeListOut(items)),
        )?;
        s.serialize_field("NodeNames", &self.node_names)?;
        s.serialize_field("FailedNodes", &NullIfEmpty(&self.failed_nodes))?;
        s.serialize_field(
            "FailedAndUnresolvableNodes",
            &NullIfEmpty(&self.failed_and_unresolvable_nodes),
        )?;
        s.serialize_field("Error", &self.error)?;
        s.end()
    }
}

/// A `v1.NodeList` around the passing nodes; no `apiVersion`/`kind`, as the scheduler sends.
struct NodeListOut<'a, 'b>(&'b [&'a RawValue]);

impl Serialize for NodeListOut<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("NodeList", 2)?;
        s.serialize_field("metadata", &EmptyObject)?;
        s.serialize_field("items", self.0)?;
        s.end()
    }
}

struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_map(Some(0))?.end()
    }
}

/// A map that is `null` when empty, as a nil Go map is.
struct NullIfEmpty<'a, 'b>(&'b BTreeMap<&'a str, String>);

impl Serialize for NullIfEmpty<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            serializer.serialize_none()
        } else {
            self.0.serialize(serializer)
        }
    }
}

/// One entry of a `HostPriorityList`, the answer to `prioritize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPriority {
    /// Node name.
    #[serde(rename = "Host")]
    pub host: String,
    /// Score in `MIN_EXTENDER_PRIORITY..=MAX_EXTENDER_PRIORITY`.
    #[serde(rename = "Score")]
    pub score: i64,
}

/// A `HostPriority` to write, borrowing the host name from the request (a prioritize answer
/// has one per node; copying 500 names per request was most of its cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HostScore<'a> {
    /// Node name.
    #[serde(rename = "Host")]
    pub host: &'a str,
    /// Score in `MIN_EXTENDER_PRIORITY..=MAX_EXTENDER_PRIORITY`.
    #[serde(rename = "Score")]
    pub score: i64,
}

/// The body of a failed `prioritize` call (any non-200 answer is an error to the scheduler,
/// which then ignores this extender's scores for the cycle; the body is for humans and logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// What was wrong with the request.
    #[serde(rename = "Error")]
    pub error: String,
}

#[cfg(test)]
mod tests;
