//! Writes the numbering tables that `src/e164.rs` reads as static data (`$OUT_DIR/numbering.rs`).
//!
//! The `phonenumber` crate ships libphonenumber's metadata and parses all of it the first time
//! it is touched (about 120 ms and 9 MB), after which libnol used to compile every region's
//! patterns (about 0.5 s and 90 MB). Here, at build time, the same metadata is read once and
//! reduced to what libnol's parser uses: per region its country code, its patterns (already
//! squeezed and anchored), its possible lengths, national prefix for parsing, transform rule and
//! international prefix. At run time nothing loads the crate's database: a region's patterns are
//! compiled the first time a number of that region is seen.
//!
//! Every pattern is compiled here with the same `regex` crate the library uses, so that the
//! tables only hold patterns that compile, exactly as the run-time construction used to skip
//! those that did not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use regex::Regex;

/// The metadata stores patterns with XML indentation; they are written for `(?x)`.
fn squeeze(pattern: &str) -> String {
    pattern.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Anchored at both ends: libphonenumber's `matchNationalNumber(.., false)`.
fn anchored_full(pattern: &str) -> Option<String> {
    let p = format!("^(?:{})$", squeeze(pattern));
    Regex::new(&p).ok().map(|_| p)
}

/// Anchored at the start (`lookingAt`).
fn anchored_start(pattern: &str) -> Option<String> {
    let p = format!("^(?:{})", squeeze(pattern));
    Regex::new(&p).ok().map(|_| p)
}

fn type_descriptors(m: &Metadata) -> Vec<&Descriptor> {
    let d = m.descriptors();
    [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

struct Desc {
    pattern: String,
    lengths: Vec<usize>,
}

struct Region {
    id: String,
    country_code: u16,
    general: Desc,
    lengths: Vec<usize>,
    local_lengths: Vec<usize>,
    types: Vec<Desc>,
    national_prefix: Option<String>,
    transform: Option<String>,
    idd: Option<String>,
}

fn desc(d: &Descriptor, general_lengths: &[usize]) -> Option<Desc> {
    let lengths: Vec<usize> = if d.possible_length().is_empty() {
        general_lengths.to_vec()
    } else {
        d.possible_length().iter().map(|&l| l as usize).collect()
    };
    Some(Desc {
        pattern: anchored_full(d.national_number().as_str())?,
        lengths,
    })
}

fn build_region(m: &Metadata) -> Option<Region> {
    // libphonenumber's build step makes the general lengths the union of the types' lengths
    // (BuildMetadataFromXml.setPossibleLengthsGeneralDesc); the crate reads the raw XML, which
    // leaves them empty, so do the same here.
    let types = type_descriptors(m);
    let mut lengths: Vec<usize> = m
        .descriptors()
        .general()
        .possible_length()
        .iter()
        .map(|&l| l as usize)
        .collect();
    let mut local_lengths: Vec<usize> = Vec::new();
    if lengths.is_empty() {
        for t in &types {
            lengths.extend(t.possible_length().iter().map(|&l| l as usize));
            local_lengths.extend(t.possible_local_length().iter().map(|&l| l as usize));
        }
    } else {
        local_lengths.extend(
            m.descriptors()
                .general()
                .possible_local_length()
                .iter()
                .map(|&l| l as usize),
        );
    }
    lengths.sort_unstable();
    lengths.dedup();
    local_lengths.sort_unstable();
    local_lengths.dedup();
    local_lengths.retain(|l| !lengths.contains(l));

    let general = desc(m.descriptors().general(), &lengths)?;
    let types = types
        .into_iter()
        .filter_map(|t| desc(t, &lengths))
        .collect();
    let national_prefix = match (m.national_prefix_for_parsing(), m.national_prefix()) {
        (Some(re), _) => anchored_start(re.as_str()),
        (None, Some(prefix)) if !prefix.is_empty() => anchored_start(&regex::escape(prefix)),
        _ => None,
    };
    let transform = m
        .national_prefix_transform_rule()
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let idd = m
        .international_prefix()
        .and_then(|re| anchored_start(re.as_str()));
    Some(Region {
        id: m.id().to_string(),
        country_code: m.country_code(),
        general,
        lengths,
        local_lengths,
        types,
        national_prefix,
        transform,
        idd,
    })
}

fn lit(s: &str) -> String {
    // A `str`'s Debug form is a valid Rust string literal.
    format!("{s:?}")
}

fn opt(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("Some({})", lit(s)),
        None => "None".into(),
    }
}

fn desc_data(d: &Desc) -> String {
    format!(
        "DescData {{ pattern: {}, lengths: &{:?} }}",
        lit(&d.pattern),
        d.lengths
    )
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");

    // In the order the run-time construction used: by code, the main country of a code first,
    // then the metadata's order (its first region is the one libphonenumber calls the region of
    // the code).
    let mut regions: Vec<Region> = Vec::new();
    for code in 1u16..1000 {
        let Some(list) = DATABASE.by_code(&code) else {
            continue;
        };
        let mut built: Vec<(bool, Region)> = list
            .into_iter()
            .filter_map(|m| build_region(m).map(|r| (m.is_main_country_for_code(), r)))
            .collect();
        if let Some(pos) = built.iter().position(|(main, _)| *main) {
            let main = built.remove(pos);
            built.insert(0, main);
        }
        regions.extend(built.into_iter().map(|(_, r)| r));
    }
    assert!(
        regions.len() < usize::from(u16::MAX),
        "region indices fit in u16"
    );

    let mut by_id: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_code: BTreeMap<u16, (usize, usize)> = BTreeMap::new();
    for (i, r) in regions.iter().enumerate() {
        // Non-geographic entities share the id `001`: they are reached by code only.
        if r.id != "001" {
            let previous = by_id.insert(&r.id, i);
            assert!(previous.is_none(), "region {} twice", r.id);
        }
        let entry = by_code.entry(r.country_code).or_insert((i, i));
        assert_eq!(entry.1, i, "the regions of a code are contiguous");
        entry.1 = i + 1;
    }

    let mut out = String::new();
    writeln!(
        out,
        "// @generated by nol-core/build.rs from the phonenumber crate's metadata. Do not edit."
    )
    .unwrap();
    writeln!(
        out,
        "pub(super) const REGION_COUNT: usize = {};",
        regions.len()
    )
    .unwrap();
    writeln!(
        out,
        "pub(super) static REGIONS: [RegionData; REGION_COUNT] = ["
    )
    .unwrap();
    for r in &regions {
        let types: Vec<String> = r.types.iter().map(desc_data).collect();
        writeln!(
            out,
            "    RegionData {{ country_code: {}, general: {}, lengths: &{:?}, local_lengths: &{:?}, types: &[{}], national_prefix: {}, transform: {}, idd: {} }}, // {}",
            r.country_code,
            desc_data(&r.general),
            r.lengths,
            r.local_lengths,
            types.join(", "),
            opt(&r.national_prefix),
            opt(&r.transform),
            opt(&r.idd),
            r.id,
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
    writeln!(
        out,
        "/// Geographic region id -> index in `REGIONS`, sorted by id."
    )
    .unwrap();
    writeln!(
        out,
        "pub(super) static BY_ID: [(&str, u16); {}] = [",
        by_id.len()
    )
    .unwrap();
    for (id, i) in &by_id {
        writeln!(out, "    ({}, {i}),", lit(id)).unwrap();
    }
    writeln!(out, "];").unwrap();
    writeln!(
        out,
        "/// Country calling code -> its regions `REGIONS[start..end]`, main country first; sorted by code."
    )
    .unwrap();
    writeln!(
        out,
        "pub(super) static BY_CODE: [(u16, u16, u16); {}] = [",
        by_code.len()
    )
    .unwrap();
    for (code, (start, end)) in &by_code {
        writeln!(out, "    ({code}, {start}, {end}),").unwrap();
    }
    writeln!(out, "];").unwrap();

    let path = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("numbering.rs");
    std::fs::write(&path, out).expect("writing the numbering tables");
}
