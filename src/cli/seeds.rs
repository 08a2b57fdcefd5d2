//! The `--seeds` value: `42..51` (inclusive), `42,43,50`, or a single seed.

use std::fmt;
use std::str::FromStr;

/// Most seeds one invocation may ask for; a typo like `0..4000000000` should not run for days.
pub const MAX_SEEDS: u64 = 10_000;

/// A list of seeds.
///
/// ```
/// use tessera::cli::SeedList;
///
/// let seeds: SeedList = "42..45".parse().unwrap();
/// assert_eq!(seeds.0, vec![42, 43, 44, 45]);
/// assert!("5..4".parse::<SeedList>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedList(pub Vec<u64>);

/// Why a `--seeds` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeedError {
    /// Not a number, a range or a list.
    #[error("{0:?} is not a seed, a range like 42..51 or a list like 42,43")]
    Syntax(String),
    /// A range that ends before it starts.
    #[error("seed range {start}..{end} is empty")]
    EmptyRange {
        /// First seed.
        start: u64,
        /// Last seed.
        end: u64,
    },
    /// Too many seeds.
    #[error("{count} seeds asked for; at most {MAX_SEEDS}")]
    TooMany {
        /// How many.
        count: u64,
    },
}

impl FromStr for SeedList {
    type Err = SeedError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || SeedError::Syntax(s.to_string());
        let number = |t: &str| t.trim().parse::<u64>().map_err(|_| syntax());
        let seeds = if let Some((a, b)) = s.split_once("..") {
            let b = b.strip_prefix('=').unwrap_or(b);
            let (start, end) = (number(a)?, number(b)?);
            if end < start {
                return Err(SeedError::EmptyRange { start, end });
            }
            let count = end - start + 1;
            if count > MAX_SEEDS {
                return Err(SeedError::TooMany { count });
            }
            (start..=end).collect()
        } else {
            let seeds = s.split(',').map(number).collect::<Result<Vec<_>, _>>()?;
            if seeds.len() as u64 > MAX_SEEDS {
                return Err(SeedError::TooMany {
                    count: seeds.len() as u64,
                });
            }
            seeds
        };
        Ok(SeedList(seeds))
    }
}

impl fmt::Display for SeedList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u64::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_lists_keep_their_order() {
        assert_eq!(
            "42..51".parse::<SeedList>().unwrap().0,
            (42..=51).collect::<Vec<_>>()
        );
        assert_eq!("1..=3".parse::<SeedList>().unwrap().0, vec![1, 2, 3]);
        assert_eq!("7,3, 5".parse::<SeedList>().unwrap().0, vec![7, 3, 5]);
        assert_eq!("9".parse::<SeedList>().unwrap().0, vec![9]);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(matches!("x".parse::<SeedList>(), Err(SeedError::Syntax(_))));
        assert!(matches!(
            "1,,2".parse::<SeedList>(),
            Err(SeedError::Syntax(_))
        ));
        assert_eq!(
            "5..4".parse::<SeedList>(),
            Err(SeedError::EmptyRange { start: 5, end: 4 })
        );
        assert!(matches!(
            "0..99999".parse::<SeedList>(),
            Err(SeedError::TooMany { .. })
        ));
    }
}
