//! Text forms of a set of slices, as `tessera slices` prints them and the golden files hold
//! them: both can be fed to `kubectl apply -f -`.

use k8s_openapi::api::resource::v1::ResourceSlice;
use serde::Serialize;

/// Why slices could not be written out (a serializer bug; plain data always serializes).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// YAML serialization failed.
    #[error("cannot write slices as YAML: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
    /// JSON serialization failed.
    #[error("cannot write slices as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One YAML document per slice, separated by `---`. Strings a YAML 1.1 reader (kubectl)
/// would take for numbers, such as the PCI bus ID `0000:18:00.0`, are quoted.
pub fn to_yaml(slices: &[ResourceSlice]) -> Result<String, FormatError> {
    let mut out = String::new();
    for (i, slice) in slices.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_saphyr::to_string(slice)?);
    }
    Ok(out)
}

/// A pretty-printed `v1` `List` holding the slices.
pub fn to_json(slices: &[ResourceSlice]) -> Result<String, FormatError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct List<'a> {
        api_version: &'static str,
        kind: &'static str,
        items: &'a [ResourceSlice],
    }
    let mut text = serde_json::to_string_pretty(&List {
        api_version: "v1",
        kind: "List",
        items: slices,
    })?;
    text.push('\n');
    Ok(text)
}
