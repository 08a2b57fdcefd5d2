//! GPU model names interned to small ids, and sets of allowed models.
//!
//! Models are compared on every feasibility check, so they are ids and bitmasks rather than
//! strings: a pod's `gpu_spec` becomes a [`ModelSet`] once, a node's model a [`ModelId`].

use serde::Serialize;

/// Most distinct GPU models one registry holds (one bit each in a [`ModelSet`]).
pub const MAX_MODELS: usize = 64;

/// Errors of the model registry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// More distinct GPU models than a [`ModelSet`] can hold.
    #[error("more than {MAX_MODELS} distinct GPU models (adding {name:?})")]
    TooManyModels {
        /// The model that did not fit.
        name: String,
    },
}

/// A GPU model interned in a [`ModelRegistry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ModelId(u8);

impl ModelId {
    /// Index of this model in its registry.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A set of allowed GPU models; [`ModelSet::ANY`] when a pod accepts every model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ModelSet(u64);

impl ModelSet {
    /// Every model is allowed (an empty `gpu_spec`).
    pub const ANY: ModelSet = ModelSet(u64::MAX);
    /// No model is allowed (a `gpu_spec` naming only models the cluster does not have).
    pub const NONE: ModelSet = ModelSet(0);

    /// The set holding just `id`.
    pub fn only(id: ModelId) -> Self {
        ModelSet(1u64 << id.0)
    }

    /// This set plus `id`.
    pub fn with(self, id: ModelId) -> Self {
        ModelSet(self.0 | (1u64 << id.0))
    }

    /// Whether a node of model `model` (None: no GPU) is allowed.
    ///
    /// A node without GPUs is only "allowed" by [`ModelSet::ANY`], as in the FGD simulator,
    /// where a CPU node never matches a pod that names GPU types.
    pub fn allows(self, model: Option<ModelId>) -> bool {
        match model {
            Some(id) => self.0 & (1u64 << id.0) != 0,
            None => self == ModelSet::ANY,
        }
    }

    /// Whether the model of registry index `index` is in the set (false past [`MAX_MODELS`]).
    pub fn allows_index(self, index: usize) -> bool {
        index < MAX_MODELS && self.0 & (1u64 << index) != 0
    }

    /// Whether this is the unconstrained set.
    pub fn is_any(self) -> bool {
        self == ModelSet::ANY
    }
}

/// Interns GPU model names (`T4`, `V100M16`, `NVIDIA H100 80GB HBM3`, …).
#[derive(Debug, Clone, Default)]
pub struct ModelRegistry {
    names: Vec<String>,
}

impl ModelRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> Result<ModelId, ModelError> {
        if let Some(id) = self.get(name) {
            return Ok(id);
        }
        let index = u8::try_from(self.names.len())
            .ok()
            .filter(|i| usize::from(*i) < MAX_MODELS)
            .ok_or_else(|| ModelError::TooManyModels {
                name: name.to_string(),
            })?;
        self.names.push(name.to_string());
        Ok(ModelId(index))
    }

    /// The id of `name`, if known.
    pub fn get(&self, name: &str) -> Option<ModelId> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| u8::try_from(i).ok())
            .map(ModelId)
    }

    /// The name of `id` (empty if `id` comes from another registry).
    pub fn name(&self, id: ModelId) -> &str {
        self.names.get(id.index()).map_or("", String::as_str)
    }

    /// The set of models a `gpu_spec` list allows: [`ModelSet::ANY`] for an empty list;
    /// names this registry does not know can never match and are dropped.
    pub fn set_of<S: AsRef<str>>(&self, names: &[S]) -> ModelSet {
        if names.is_empty() {
            return ModelSet::ANY;
        }
        names
            .iter()
            .filter_map(|n| self.get(n.as_ref()))
            .fold(ModelSet::NONE, ModelSet::with)
    }

    /// Number of models interned.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no model is interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_sets_match_only_their_models() {
        let mut reg = ModelRegistry::new();
        let t4 = reg.intern("T4").unwrap();
        let v100 = reg.intern("V100M16").unwrap();
        assert_eq!(reg.intern("T4").unwrap(), t4);
        assert_eq!(reg.name(v100), "V100M16");

        let set = reg.set_of(&["V100M16", "V100M32"]);
        assert!(set.allows(Some(v100)));
        assert!(!set.allows(Some(t4)));
        assert!(!set.allows(None), "a CPU node never matches a named model");
        assert!(ModelSet::ANY.allows(None));
        assert_eq!(reg.set_of::<&str>(&[]), ModelSet::ANY);
        assert_eq!(reg.set_of(&["G9"]), ModelSet::NONE);
    }

    #[test]
    fn registry_refuses_the_sixty_fifth_model() {
        let mut reg = ModelRegistry::new();
        for i in 0..MAX_MODELS {
            reg.intern(&format!("M{i}")).unwrap();
        }
        assert_eq!(
            reg.intern("one-too-many"),
            Err(ModelError::TooManyModels {
                name: "one-too-many".into()
            })
        );
    }
}
