//! A static MIG layout: the instances the admin made, each free or taken.

use serde::{Deserialize, Serialize};

use super::PartitionError;
use crate::model::mig::{MigLayout, MigProfile, PlacedInstance, Placement};

/// The existing instances of a static-MIG GPU and which are taken.
///
/// The instances come from a [`MigLayout`], so they never overlap and always follow the
/// product's table; only the taken flags change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StaticRepr", into = "StaticRepr")]
pub struct StaticLayout {
    layout: MigLayout,
    taken: Vec<bool>,
}

#[derive(Serialize, Deserialize)]
struct StaticRepr {
    layout: MigLayout,
    taken: Vec<bool>,
}

impl StaticLayout {
    /// Every instance of `layout`, all free.
    pub fn new(layout: MigLayout) -> Self {
        let taken = vec![false; layout.instances().len()];
        StaticLayout { layout, taken }
    }

    /// The instances as placed.
    pub fn layout(&self) -> &MigLayout {
        &self.layout
    }

    /// Each instance with whether it is taken, in layout order.
    pub fn instances(&self) -> impl Iterator<Item = (&PlacedInstance, bool)> {
        self.layout
            .instances()
            .iter()
            .zip(self.taken.iter().copied())
    }

    /// Number of free instances.
    pub fn free_count(&self) -> usize {
        self.taken.iter().filter(|t| !**t).count()
    }

    /// Index of the instance of `profile` at `placement`.
    pub fn position(&self, profile: &MigProfile, placement: Placement) -> Option<usize> {
        self.layout
            .instances()
            .iter()
            .position(|i| i.profile.name == profile.name && i.placement == placement)
    }

    /// Marks the instance at `index` taken (`true`) or free (`false`); refuses an index out
    /// of range and a flag that is already so (a double take or a double release).
    pub fn set_taken(&mut self, index: usize, taken: bool) -> Result<(), PartitionError> {
        match self.taken.get_mut(index) {
            Some(flag) if *flag != taken => {
                *flag = taken;
                Ok(())
            }
            Some(_) if taken => Err(PartitionError::AlreadyTaken),
            Some(_) => Err(PartitionError::NotTaken),
            None => Err(PartitionError::NoSuchInstance),
        }
    }
}

impl From<StaticLayout> for StaticRepr {
    fn from(s: StaticLayout) -> Self {
        StaticRepr {
            layout: s.layout,
            taken: s.taken,
        }
    }
}

impl TryFrom<StaticRepr> for StaticLayout {
    type Error = PartitionError;

    fn try_from(repr: StaticRepr) -> Result<Self, Self::Error> {
        if repr.taken.len() != repr.layout.instances().len() {
            return Err(PartitionError::InvalidState {
                reason: format!(
                    "{} taken flags for {} instances",
                    repr.taken.len(),
                    repr.layout.instances().len()
                ),
            });
        }
        Ok(StaticLayout {
            layout: repr.layout,
            taken: repr.taken,
        })
    }
}
