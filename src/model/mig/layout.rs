//! The GPU instances placed on one GPU, and which placements remain possible.

use serde::{Deserialize, Serialize};

use super::{GpuProduct, MigError, MigProfile, Placement, profile, profiles};

/// One GPU instance on the GPU: its profile and where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacedInstance {
    /// The instance's profile, from the product's table.
    pub profile: &'static MigProfile,
    /// The memory slices it occupies.
    pub placement: Placement,
}

/// The GPU instances placed on one GPU of a given product.
///
/// Every change goes through [`MigLayout::place`], which refuses overlapping memory slices,
/// placements the profile does not list, more instances than the profile's `max_count`,
/// more compute slices than the GPU has, and a second media-extension instance; so a layout
/// is always one the driver could create. Deserializing re-places every entry, so a stored
/// layout that breaks a rule is rejected rather than loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LayoutRepr", into = "LayoutRepr")]
pub struct MigLayout {
    product: GpuProduct,
    instances: Vec<PlacedInstance>,
}

/// Serialized form: profiles by name, so stored layouts stay readable and table-independent.
#[derive(Serialize, Deserialize)]
struct LayoutRepr {
    product: GpuProduct,
    instances: Vec<InstanceRepr>,
}

#[derive(Serialize, Deserialize)]
struct InstanceRepr {
    profile: String,
    start: u8,
    size: u8,
}

impl MigLayout {
    /// An empty GPU of this product (MIG enabled, no instances).
    pub fn new(product: GpuProduct) -> Self {
        MigLayout {
            product,
            instances: Vec::new(),
        }
    }

    /// The product whose tables this layout follows.
    pub fn product(&self) -> GpuProduct {
        self.product
    }

    /// The instances placed so far, in placement order.
    pub fn instances(&self) -> &[PlacedInstance] {
        &self.instances
    }

    /// Compute slices not used by any placed instance.
    pub fn free_compute_slices(&self) -> u8 {
        let used: u16 = self
            .instances
            .iter()
            .map(|i| u16::from(i.profile.compute_slices))
            .sum();
        let total = u16::from(self.product.total_compute_slices());
        u8::try_from(total.saturating_sub(used)).unwrap_or(0)
    }

    /// Whether [`MigLayout::place`] would accept this profile at this placement.
    pub fn can_place(&self, profile: &MigProfile, placement: Placement) -> bool {
        self.check(profile, placement).is_ok()
    }

    /// Places an instance of `profile` at `placement`, or says why it cannot be placed.
    pub fn place(&mut self, profile: &MigProfile, placement: Placement) -> Result<(), MigError> {
        let profile = self.check(profile, placement)?;
        self.instances.push(PlacedInstance { profile, placement });
        Ok(())
    }

    /// Removes the instance of `profile` at `placement`.
    pub fn remove(&mut self, profile: &MigProfile, placement: Placement) -> Result<(), MigError> {
        let index = self
            .instances
            .iter()
            .position(|i| i.profile.name == profile.name && i.placement == placement)
            .ok_or_else(|| MigError::NotPlaced {
                profile: profile.name.to_owned(),
                start: placement.start,
                size: placement.size,
            })?;
        self.instances.remove(index);
        Ok(())
    }

    /// Every (profile, placement) that could be placed next, in table order.
    pub fn available(&self) -> Vec<(&'static MigProfile, Placement)> {
        profiles(self.product)
            .iter()
            .flat_map(|p| p.placements.iter().map(move |pl| (p, *pl)))
            .filter(|(p, pl)| self.can_place(p, *pl))
            .collect()
    }

    /// The placements of `profile` that could be placed next (empty for a foreign profile).
    pub fn available_for(&self, profile: &MigProfile) -> Vec<Placement> {
        profile
            .placements
            .iter()
            .copied()
            .filter(|pl| self.can_place(profile, *pl))
            .collect()
    }

    /// Checks every rule and returns the product's own `'static` row for `profile`.
    fn check(
        &self,
        profile: &MigProfile,
        placement: Placement,
    ) -> Result<&'static MigProfile, MigError> {
        // Resolve through the product's table so a profile of another product (same name,
        // different geometry) or a hand-built row cannot slip in.
        // Pointer equality first: callers pass the table's own rows, and comparing whole
        // rows (placement lists included) on every check is the slow path.
        let own = profiles(self.product)
            .iter()
            .find(|p| std::ptr::eq(*p, profile))
            .or_else(|| profiles(self.product).iter().find(|p| *p == profile))
            .ok_or_else(|| MigError::UnknownProfile {
                product: self.product,
                profile: profile.name.to_owned(),
            })?;
        if !own.placements.contains(&placement)
            || placement.end() > u16::from(self.product.total_memory_slices())
        {
            return Err(MigError::PlacementNotAllowed {
                profile: own.name,
                start: placement.start,
                size: placement.size,
            });
        }
        if let Some(other) = self
            .instances
            .iter()
            .find(|i| i.placement.overlaps(placement))
        {
            return Err(MigError::Overlap {
                start: placement.start,
                size: placement.size,
                other: other.profile.name,
                other_start: other.placement.start,
                other_size: other.placement.size,
            });
        }
        let same = self
            .instances
            .iter()
            .filter(|i| i.profile.name == own.name)
            .count();
        if same >= usize::from(own.max_count) {
            return Err(MigError::MaxCountReached {
                profile: own.name,
                max: own.max_count,
            });
        }
        let free = self.free_compute_slices();
        if own.compute_slices > free {
            return Err(MigError::ComputeExhausted {
                profile: own.name,
                needed: own.compute_slices,
                free,
            });
        }
        // The full-GPU profile of each product has a single OFA and JPEG set (guide, Hardware
        // Units column: "1 JPEG /1 OFA" on A100 7g and A30 4g, "/1 OFA" on H100/H200 7g), and
        // every `+me` profile takes it; so two `+me` instances cannot coexist. This matters on
        // A30, which has two `+me` profiles (1g.6gb+me and 2g.12gb+me).
        let holder = if own.media_extensions {
            self.instances.iter().find(|i| i.profile.media_extensions)
        } else {
            None
        };
        if let Some(holder) = holder {
            return Err(MigError::MediaExtensionsTaken {
                profile: own.name,
                holder: holder.profile.name,
            });
        }
        Ok(own)
    }
}

impl From<MigLayout> for LayoutRepr {
    fn from(layout: MigLayout) -> Self {
        LayoutRepr {
            product: layout.product,
            instances: layout
                .instances
                .iter()
                .map(|i| InstanceRepr {
                    profile: i.profile.name.to_owned(),
                    start: i.placement.start,
                    size: i.placement.size,
                })
                .collect(),
        }
    }
}

impl TryFrom<LayoutRepr> for MigLayout {
    type Error = MigError;

    fn try_from(repr: LayoutRepr) -> Result<Self, Self::Error> {
        let mut layout = MigLayout::new(repr.product);
        for entry in repr.instances {
            let row =
                profile(repr.product, &entry.profile).ok_or_else(|| MigError::UnknownProfile {
                    product: repr.product,
                    profile: entry.profile.clone(),
                })?;
            layout.place(row, Placement::new(entry.start, entry.size))?;
        }
        Ok(layout)
    }
}
