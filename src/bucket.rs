//! Length buckets: which structures of a run are processed together, padded to one length.
//!
//! - [`Buckets`] is the specification (`64,128,256,512,1024`, or `quantiles:4` for boundaries
//!   taken from the run's own lengths), parsed from and printed as the `--buckets` spec.
//! - [`Boundaries`] is a specification resolved against the run's lengths: concrete upper bounds,
//!   the last bucket open.
//! - [`Router`] assigns structures to buckets by length and groups each bucket's structures into
//!   [`Group`]s of at most `N`, each with the length its members are padded to.
//!
//! Padding never changes a structure's results, with one exception the router takes care of: a
//! structure shorter than the model's `k` has `min(k, L)` neighbours per residue, so padding it
//! would pull padded positions into its neighbour lists. Such structures are only grouped with
//! structures of exactly their length (see [`Router::exact_below`]).
//!
//! ```
//! use mpnn::bucket::{Buckets, Router};
//!
//! let spec: Buckets = "64,128,256".parse().unwrap();
//! assert_eq!(spec.to_string(), "64,128,256");
//! let lengths = [50, 300, 100, 60, 120];
//! let router = Router::new(spec.resolve(&lengths), 2).unwrap();
//! let groups = router.route(&lengths);
//! // ≤64: structures 3 and 0 together, padded to 60; ≤128: 4 and 2, padded to 120; >256: 1 alone
//! let members: Vec<Vec<usize>> = groups.iter().map(|g| g.members.clone()).collect();
//! assert_eq!(members, vec![vec![3, 0], vec![4, 2], vec![1]]);
//! assert_eq!(groups[0].pad_to, 60);
//! ```

use std::fmt;
use std::str::FromStr;

/// The default bucket boundaries (inclusive upper bounds); longer structures form one open bucket.
pub const DEFAULT_BOUNDARIES: [usize; 5] = [64, 128, 256, 512, 1024];

/// The most buckets `quantiles:N` may ask for.
pub const MAX_QUANTILES: usize = 1024;

/// How structures are bucketed by length: fixed boundaries, or the quantiles of the run's own
/// lengths. `Display` writes the spec `FromStr` reads.
///
/// ```
/// use mpnn::bucket::Buckets;
///
/// assert_eq!(Buckets::default().to_string(), "64,128,256,512,1024");
/// let q: Buckets = "quantiles:4".parse().unwrap();
/// assert_eq!(q, Buckets::quantiles(4).unwrap());
/// assert_eq!(q.to_string().parse::<Buckets>().unwrap(), q);
/// let err = "128,64".parse::<Buckets>().unwrap_err();
/// assert!(err.to_string().contains("increase"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Inclusive upper bounds, strictly increasing, at least one.
    Fixed(Vec<usize>),
    /// This many buckets, at least one.
    Quantiles(usize),
}

/// Why a bucket spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketsError {
    #[error("empty bucket spec; give upper bounds like `64,128,256,512,1024` or `quantiles:N`")]
    Empty,
    #[error("`{item}` is not a length; bucket bounds are whole numbers of residues, like `64,128,256`")]
    NotALength { item: String },
    #[error("a bucket bound of 0 holds no structure; bounds start at 1")]
    Zero,
    #[error("bucket bounds must increase: {next} comes after {previous} (write them smallest first, each once)")]
    NotIncreasing { previous: usize, next: usize },
    #[error("`{value}` is not a number of buckets; write `quantiles:N` with N from 1 to {MAX_QUANTILES}")]
    BadQuantiles { value: String },
    #[error("a batch of 0 structures runs nothing; give at least 1")]
    ZeroBatch,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets { kind: Kind::Fixed(DEFAULT_BOUNDARIES.to_vec()) }
    }
}

impl Buckets {
    /// Fixed inclusive upper bounds (strictly increasing, each at least 1), plus an open bucket
    /// above the last.
    pub fn fixed(bounds: Vec<usize>) -> Result<Buckets, BucketsError> {
        if bounds.is_empty() {
            return Err(BucketsError::Empty);
        }
        if bounds[0] == 0 {
            return Err(BucketsError::Zero);
        }
        if let Some(w) = bounds.windows(2).find(|w| w[1] <= w[0]) {
            return Err(BucketsError::NotIncreasing { previous: w[0], next: w[1] });
        }
        Ok(Buckets { kind: Kind::Fixed(bounds) })
    }

    /// `n` buckets with boundaries at the quantiles of the run's lengths (`n = 1`: one bucket).
    pub fn quantiles(n: usize) -> Result<Buckets, BucketsError> {
        if n == 0 || n > MAX_QUANTILES {
            return Err(BucketsError::BadQuantiles { value: n.to_string() });
        }
        Ok(Buckets { kind: Kind::Quantiles(n) })
    }

    /// Concrete boundaries for a run with these structure lengths.
    ///
    /// Quantile boundaries: with the lengths sorted (`s[0..m]`), bucket `i` of `n` ends at
    /// `s[⌈i·m/n⌉ - 1]`; repeated boundaries merge, so there may be fewer than `n` buckets.
    ///
    /// ```
    /// use mpnn::bucket::Buckets;
    ///
    /// let b = Buckets::quantiles(2).unwrap().resolve(&[10, 40, 20, 30]);
    /// assert_eq!(b.upper(), &[20]);
    /// assert_eq!((b.bucket_of(20), b.bucket_of(21)), (0, 1));
    /// assert_eq!(Buckets::quantiles(1).unwrap().resolve(&[10, 40]).len(), 1);
    /// ```
    pub fn resolve(&self, lengths: &[usize]) -> Boundaries {
        match &self.kind {
            Kind::Fixed(b) => Boundaries { upper: b.clone() },
            Kind::Quantiles(n) => {
                let mut sorted = lengths.to_vec();
                sorted.sort_unstable();
                let m = sorted.len();
                let mut upper: Vec<usize> = (1..*n)
                    .filter_map(|i| {
                        let rank = (i * m).div_ceil(*n);
                        rank.checked_sub(1).map(|r| sorted[r])
                    })
                    .collect();
                upper.dedup();
                // a bound at the longest length would leave the open bucket empty
                if upper.last() == sorted.last() {
                    upper.pop();
                }
                Boundaries { upper }
            }
        }
    }
}

impl fmt::Display for Buckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Fixed(b) => {
                let parts: Vec<String> = b.iter().map(|v| v.to_string()).collect();
                f.write_str(&parts.join(","))
            }
            Kind::Quantiles(n) => write!(f, "quantiles:{n}"),
        }
    }
}

impl FromStr for Buckets {
    type Err = BucketsError;

    /// `64,128,256` (inclusive upper bounds, increasing; spaces allowed) or `quantiles:N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(BucketsError::Empty);
        }
        if let Some(n) = s.strip_prefix("quantiles:") {
            let n = n.trim();
            let value = n.parse::<usize>().map_err(|_| BucketsError::BadQuantiles { value: n.to_string() })?;
            return Buckets::quantiles(value);
        }
        let bounds = s
            .split(',')
            .map(|item| {
                let item = item.trim();
                item.parse::<usize>().map_err(|_| BucketsError::NotALength { item: item.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Buckets::fixed(bounds)
    }
}

/// Resolved bucket boundaries: bucket `i < upper.len()` holds lengths in
/// `(upper[i-1], upper[i]]`, and bucket `upper.len()` every longer one (the open bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundaries {
    upper: Vec<usize>,
}

impl Boundaries {
    /// The inclusive upper bounds of the closed buckets.
    pub fn upper(&self) -> &[usize] {
        &self.upper
    }

    /// Number of buckets (the closed ones plus the open one).
    pub fn len(&self) -> usize {
        self.upper.len() + 1
    }

    /// Always false: there is at least the open bucket.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bucket index of a length.
    pub fn bucket_of(&self, len: usize) -> usize {
        self.upper.partition_point(|&u| u < len)
    }

    /// The inclusive upper bound of a bucket (`None` for the open bucket).
    pub fn bound(&self, bucket: usize) -> Option<usize> {
        self.upper.get(bucket).copied()
    }

    /// A bucket's label: `≤64`, `>1024`, or `all` when there is a single bucket.
    pub fn label(&self, bucket: usize) -> String {
        match (self.bound(bucket), self.upper.last()) {
            (Some(u), _) => format!("≤{u}"),
            (None, Some(last)) => format!(">{last}"),
            (None, None) => "all".to_string(),
        }
    }
}

/// How far a group's members are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// To the group's longest member (the least work).
    #[default]
    Longest,
    /// To the bucket's upper bound (one shape per bucket, like a fixed-shape accelerator
    /// batch); the open bucket pads to its longest member.
    Bound,
}

/// Structures processed together: indices into the routed list, all of one bucket, and the
/// length they are padded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub bucket: usize,
    pub members: Vec<usize>,
    pub pad_to: usize,
}

/// Assigns structures to buckets and groups each bucket into batches of at most `max_batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    bounds: Boundaries,
    max_batch: usize,
    exact_below: usize,
    padding: Padding,
}

impl Router {
    /// A router over `bounds` with at most `max_batch` structures per group.
    pub fn new(bounds: Boundaries, max_batch: usize) -> Result<Router, BucketsError> {
        if max_batch == 0 {
            return Err(BucketsError::ZeroBatch);
        }
        Ok(Router { bounds, max_batch, exact_below: 0, padding: Padding::Longest })
    }

    /// Structures shorter than `len` (the model's `k`) are grouped only with structures of
    /// exactly their length and never padded: their neighbour lists hold every residue, so
    /// padding would add padded positions to them and change the results.
    pub fn exact_below(mut self, len: usize) -> Router {
        self.exact_below = len;
        self
    }

    pub fn padding(mut self, padding: Padding) -> Router {
        self.padding = padding;
        self
    }

    pub fn boundaries(&self) -> &Boundaries {
        &self.bounds
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Groups structures of these lengths: buckets in increasing order; within a bucket,
    /// members by decreasing length (then input order), `max_batch` at a time, so a bucket's
    /// first group is its largest and buffers sized for it serve the rest. Every index appears
    /// in exactly one group.
    ///
    /// ```
    /// use mpnn::bucket::{Buckets, Router};
    ///
    /// // k = 48: the two 30-residue structures may run together, the 40-residue one alone
    /// let lengths = [30, 40, 30, 60, 100];
    /// let router = Router::new(Buckets::default().resolve(&lengths), 8).unwrap().exact_below(48);
    /// let groups = router.route(&lengths);
    /// let members: Vec<Vec<usize>> = groups.iter().map(|g| g.members.clone()).collect();
    /// assert_eq!(members, vec![vec![3], vec![1], vec![0, 2], vec![4]]);
    /// assert_eq!(groups.iter().map(|g| g.pad_to).collect::<Vec<_>>(), vec![60, 40, 30, 100]);
    /// ```
    pub fn route(&self, lengths: &[usize]) -> Vec<Group> {
        // (bucket, 0 or usize::MAX - exact length for short structures) → members; within a
        // bucket the padded structures come first, then the short ones, longest first
        let mut keyed: std::collections::BTreeMap<(usize, usize), Vec<usize>> = Default::default();
        for (i, &len) in lengths.iter().enumerate() {
            let exact = if len < self.exact_below { usize::MAX - len } else { 0 };
            keyed.entry((self.bounds.bucket_of(len), exact)).or_default().push(i);
        }
        let mut groups = Vec::new();
        for ((bucket, exact), mut members) in keyed {
            let exact = (exact != 0).then(|| usize::MAX - exact);
            members.sort_by_key(|&i| (std::cmp::Reverse(lengths[i]), i));
            let bucket_max = members.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            for chunk in members.chunks(self.max_batch) {
                let longest = chunk.iter().map(|&i| lengths[i]).max().unwrap_or(0);
                let pad_to = match (exact, self.padding) {
                    (Some(len), _) => len,
                    (None, Padding::Longest) => longest,
                    (None, Padding::Bound) => self.bounds.bound(bucket).unwrap_or(bucket_max),
                };
                groups.push(Group { bucket, members: chunk.to_vec(), pad_to });
            }
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip() {
        for spec in ["64,128,256,512,1024", "1", "5,6", "quantiles:1", "quantiles:4", "quantiles:1024"] {
            let b: Buckets = spec.parse().unwrap();
            assert_eq!(b.to_string(), spec);
            assert_eq!(b.to_string().parse::<Buckets>().unwrap(), b);
        }
        assert_eq!(" 64, 128 ".parse::<Buckets>().unwrap().to_string(), "64,128");
        assert_eq!("quantiles: 3".parse::<Buckets>().unwrap(), Buckets::quantiles(3).unwrap());
        assert_eq!(
            Buckets::default(),
            DEFAULT_BOUNDARIES.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",").parse().unwrap()
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let cases = [
            ("", BucketsError::Empty),
            ("  ", BucketsError::Empty),
            ("64,,128", BucketsError::NotALength { item: String::new() }),
            ("64,abc", BucketsError::NotALength { item: "abc".into() }),
            ("-5", BucketsError::NotALength { item: "-5".into() }),
            ("0,64", BucketsError::Zero),
            ("128,64", BucketsError::NotIncreasing { previous: 128, next: 64 }),
            ("64,64", BucketsError::NotIncreasing { previous: 64, next: 64 }),
            ("quantiles:0", BucketsError::BadQuantiles { value: "0".into() }),
            ("quantiles:", BucketsError::BadQuantiles { value: String::new() }),
            ("quantiles:x", BucketsError::BadQuantiles { value: "x".into() }),
            ("quantiles:1025", BucketsError::BadQuantiles { value: "1025".into() }),
            ("quantile:4", BucketsError::NotALength { item: "quantile:4".into() }),
        ];
        for (spec, want) in cases {
            assert_eq!(spec.parse::<Buckets>(), Err(want), "{spec:?}");
        }
        let msg = "64,abc".parse::<Buckets>().unwrap_err().to_string();
        assert!(msg.contains("`abc` is not a length") && msg.contains("64,128,256"), "{msg}");
        assert!(Router::new(Buckets::default().resolve(&[]), 0).unwrap_err().to_string().contains("at least 1"));
    }

    #[test]
    fn boundaries_and_labels() {
        let b = Buckets::default().resolve(&[]);
        assert_eq!(b.len(), 6);
        let at = |l| b.bucket_of(l);
        assert_eq!([at(1), at(64), at(65), at(128), at(1024), at(1025), at(100_000)], [0, 0, 1, 1, 4, 5, 5]);
        assert_eq!(b.label(0), "≤64");
        assert_eq!(b.label(5), ">1024");
        assert_eq!(b.bound(5), None);
        assert_eq!(Buckets::quantiles(1).unwrap().resolve(&[3, 9]).label(0), "all");
    }

    #[test]
    fn quantile_boundaries_follow_the_lengths() {
        let lengths: Vec<usize> = (1..=100).collect();
        let b = Buckets::quantiles(4).unwrap().resolve(&lengths);
        assert_eq!(b.upper(), &[25, 50, 75]);
        let counts = (0..b.len()).map(|i| lengths.iter().filter(|&&l| b.bucket_of(l) == i).count()).collect::<Vec<_>>();
        assert_eq!(counts, vec![25; 4]);
        // repeated lengths merge buckets; never an empty open bucket
        assert_eq!(Buckets::quantiles(4).unwrap().resolve(&[7, 7, 7, 7, 7]).upper(), &[] as &[usize]);
        assert_eq!(Buckets::quantiles(3).unwrap().resolve(&[5, 5, 9]).upper(), &[5]);
        assert_eq!(Buckets::quantiles(8).unwrap().resolve(&[]).len(), 1);
        assert_eq!(Buckets::quantiles(10).unwrap().resolve(&[1, 2]).upper(), &[1]);
    }

    #[test]
    fn router_covers_every_structure_once_within_limits() {
        let lengths: Vec<usize> = (0..200).map(|i| (i * 37 % 1500) + 1).collect();
        for spec in ["64,128,256,512,1024", "quantiles:3", "quantiles:1", "10"] {
            let spec: Buckets = spec.parse().unwrap();
            for batch in [1, 3, 8, 500] {
                for padding in [Padding::Longest, Padding::Bound] {
                    let r = Router::new(spec.resolve(&lengths), batch).unwrap().exact_below(48).padding(padding);
                    let groups = r.route(&lengths);
                    let mut seen: Vec<usize> = groups.iter().flat_map(|g| g.members.clone()).collect();
                    seen.sort_unstable();
                    assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
                    for g in &groups {
                        assert!(!g.members.is_empty() && g.members.len() <= batch);
                        for &m in &g.members {
                            assert_eq!(r.boundaries().bucket_of(lengths[m]), g.bucket);
                            assert!(lengths[m] <= g.pad_to);
                            if lengths[m] < 48 {
                                assert_eq!(lengths[m], g.pad_to, "short structures are never padded");
                            }
                        }
                        if let (Padding::Bound, Some(bound), false) =
                            (padding, r.boundaries().bound(g.bucket), lengths[g.members[0]] < 48)
                        {
                            assert_eq!(g.pad_to, bound);
                        }
                    }
                    assert!(groups.windows(2).all(|w| w[0].bucket <= w[1].bucket));
                }
            }
        }
    }

    #[test]
    fn longest_padding_groups_neighbouring_lengths() {
        let lengths = [100, 70, 128, 65, 90];
        let r = Router::new(Buckets::default().resolve(&lengths), 2).unwrap();
        let groups = r.route(&lengths);
        let got: Vec<(Vec<usize>, usize)> = groups.iter().map(|g| (g.members.clone(), g.pad_to)).collect();
        assert_eq!(got, vec![(vec![2, 0], 128), (vec![4, 1], 90), (vec![3], 65)]);
        let bound = r.clone().padding(Padding::Bound).route(&lengths);
        assert!(bound.iter().all(|g| g.pad_to == 128));
    }
}
