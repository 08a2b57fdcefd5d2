//! Golden files: the exact slices of every fake profile at every feature level, as
//! `tessera slices` prints them. Regenerate with
//! `TESSERA_UPDATE_GOLDEN=1 cargo test --lib publish::slices` and review the diff.

use std::path::PathBuf;

use super::*;

/// Set to regenerate the files instead of comparing.
const UPDATE_VAR: &str = "TESSERA_UPDATE_GOLDEN";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/publish/testdata")
}

/// (file stem, profile, level, replicas)
fn cases() -> Vec<(String, FakeProfile, FeatureLevel, u32)> {
    let mut cases = Vec::new();
    for profile in FakeProfile::ALL {
        for level in FeatureLevel::ALL {
            cases.push((format!("{profile}.{level}"), profile, level, 0));
        }
    }
    for level in [FeatureLevel::Ga, FeatureLevel::Consumable] {
        cases.push((
            format!("a100-40x8.{level}.replicas-4"),
            FakeProfile::A100_40x8,
            level,
            4,
        ));
    }
    cases
}

#[test]
fn rendered_slices_match_the_golden_files() {
    let update = std::env::var_os(UPDATE_VAR).is_some();
    let mut mismatched = Vec::new();
    for (stem, profile, level, replicas) in cases() {
        let opts = SliceOptions {
            share_replicas: replicas,
            ..options(level)
        };
        let text = to_yaml(&render_profile(profile, &opts)).unwrap();
        let path = dir().join(format!("{stem}.yaml"));
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(golden) if golden == text => {}
            Ok(_) => mismatched.push(format!("{} differs", path.display())),
            Err(e) => mismatched.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        mismatched.is_empty(),
        "{}\nif the change is intended, run `{UPDATE_VAR}=1 cargo test --lib publish::slices` and review the diff",
        mismatched.join("\n")
    );
}

#[test]
fn every_golden_file_is_a_case_and_parses_back() {
    let stems: Vec<String> = cases().into_iter().map(|c| c.0).collect();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            stems.contains(&stem),
            "stale golden file {}",
            path.display()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<ResourceSlice> = serde_saphyr::from_multiple(&text).unwrap();
        assert!(!docs.is_empty(), "{}", path.display());
        validate(&docs).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
