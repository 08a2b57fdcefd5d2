//! Ready-made static layouts, as NVIDIA's mig-parted ships them (`config-default.yaml`).

use super::{GpuProduct, MigError, MigLayout, MigProfile, Placement, profiles};

/// mig-parted's `all-1g.*` layout: as many instances of the product's smallest profile (one
/// compute and one memory slice, no media extensions) as fit: 7 on A100/H100/H200/B200, 4 on
/// A30.
pub fn all_smallest(product: GpuProduct) -> Result<MigLayout, MigError> {
    let mut layout = MigLayout::new(product);
    let row = plain(product, 1, 1)?;
    for placement in row.placements {
        layout.place(row, *placement)?;
    }
    Ok(layout)
}

/// mig-parted's `all-balanced` layout: 2 × `1g` + 1 × `2g` + 1 × `3g` on the 7-slice products
/// (e.g. `1g.10gb` ×2, `2g.20gb`, `3g.40gb` on H100-80GB), 2 × `1g` + 1 × `2g` on A30.
///
/// mig-parted gives counts, not placements; these placements are the only ones that fit all
/// four instances on one 8-slice GPU: the `3g` at `4:4` (at `0:4` the two `1g`s would need
/// slots 6 and 7, and no `1g` may start at 7), the `2g` at `0:2`, the `1g`s at 2 and 3.
pub fn all_balanced(product: GpuProduct) -> Result<MigLayout, MigError> {
    let mut layout = MigLayout::new(product);
    let one = plain(product, 1, 1)?;
    let two = plain(product, 2, 2)?;
    if product.total_compute_slices() == 4 {
        layout.place(two, Placement::new(2, 2))?;
        layout.place(one, Placement::new(0, 1))?;
        layout.place(one, Placement::new(1, 1))?;
    } else {
        let three = plain(product, 3, 4)?;
        layout.place(three, Placement::new(4, 4))?;
        layout.place(two, Placement::new(0, 2))?;
        layout.place(one, Placement::new(2, 1))?;
        layout.place(one, Placement::new(3, 1))?;
    }
    Ok(layout)
}

/// The product's plain profile with this many compute and memory slices.
fn plain(product: GpuProduct, compute: u8, memory: u8) -> Result<&'static MigProfile, MigError> {
    profiles(product)
        .iter()
        .find(|p| p.compute_slices == compute && p.memory_slices == memory && !p.media_extensions)
        .ok_or_else(|| MigError::UnknownProfile {
            product,
            profile: format!("{compute}g with {memory} memory slices"),
        })
}
