//! Lenient reading of a sample's `.json`.
//!
//! The writer is `json.dumps` over values that came from xmltodict and Entrez, so one
//! field can be a list in one sample, a string or a dict in the next, and missing values
//! are often the literal string `"None"`. Nothing here fails on an odd type: a value of
//! an unexpected shape reads as empty, and the raw JSON stays available for the detail
//! view.

use serde_json::Value;

/// The fields the grid filters and sorts on, read once at indexing time. Everything
/// else (article text, reference lists, image set) is read lazily on selection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexFields {
    /// `article_accession_id`, e.g. `PMC176545`.
    pub pmcid: String,
    /// `article_license` as written (`"CC BY"`, `"NO-CC CODE"`, or `"None"`).
    pub license: String,
    /// `image_primary_label` in written order (may repeat; treat as a set).
    pub primary: Vec<String>,
    pub secondary: Vec<String>,
    /// `image_label_id`: the DINOv2 cluster, `"0"`..`"1999"`.
    pub label_id: String,
    pub panel_type: String,
    pub panel_subtype: String,
    /// `image_size` is `[width, height]` of the source image.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub image_hash: String,
    /// `image_cluster_id`, which despite its name is the figure's image id.
    pub image_id: String,
    pub image_file_name: String,
    pub journal: String,
    /// `article_date` as written: Unix seconds, a raw date or `"None"`.
    pub date: String,
    pub title: String,
    pub citation: String,
    pub reference_count: Option<u64>,
    /// `article_mesh_terms`: MeSH descriptor names (searchable with the title).
    pub mesh: Vec<String>,
}

impl IndexFields {
    /// `article_date` as Unix seconds, when it is written that way.
    pub fn date_unix(&self) -> Option<i64> {
        date_unix(&self.date)
    }

    /// The publication year: from Unix seconds, else the first plausible 4-digit year in
    /// the raw date text.
    pub fn year(&self) -> Option<u16> {
        year_of(&self.date)
    }
}

/// The subset of the JSON read at indexing time. Unknown keys (image set, reference
/// list) are skipped without being stored, and parsing stops before `article_text`.
#[derive(Default)]
struct RawIndexFields {
    image_file_name: Value,
    image_cluster_id: Value,
    image_hash: Value,
    image_label_id: Value,
    image_panel_type: Value,
    image_panel_subtype: Value,
    image_primary_label: Value,
    image_secondary_label: Value,
    image_size: Value,
    article_accession_id: Value,
    article_title: Value,
    article_journal: Value,
    article_date: Value,
    article_citation: Value,
    article_license: Value,
    article_reference_count: Value,
    article_mesh_terms: Value,
}

/// Parse a sample's JSON bytes into the indexed fields. Errors only on JSON that is not
/// an object at all; every field is read leniently.
pub fn parse_index_fields(bytes: &[u8]) -> Result<IndexFields, String> {
    match collect(bytes) {
        Ok(raw) => Ok(raw.into_fields()),
        Err(first) => {
            let fixed = replace_lone_surrogates(bytes);
            if fixed == bytes {
                return Err(first.to_string());
            }
            collect(&fixed)
                .map(RawIndexFields::into_fields)
                .map_err(|_| first.to_string())
        }
    }
}

/// Parse the indexed fields from the first bytes of a sample's JSON. `Ok(None)` when
/// the prefix ends (or turns odd) before every indexed field was seen: read it all and
/// call [`parse_index_fields`].
///
/// Why: the writer puts `article_text` (often most of the JSON's bytes) last, after
/// every field the index needs, so parsing stops before it.
pub fn try_parse_index_fields(prefix: &[u8]) -> Option<IndexFields> {
    collect(prefix).ok().map(RawIndexFields::into_fields)
}

/// Keys read at indexing time; parsing stops once all were seen.
const WANTED: [&str; 17] = [
    "image_file_name",
    "image_cluster_id",
    "image_hash",
    "image_label_id",
    "image_panel_type",
    "image_panel_subtype",
    "image_primary_label",
    "image_secondary_label",
    "image_size",
    "article_accession_id",
    "article_title",
    "article_journal",
    "article_date",
    "article_citation",
    "article_license",
    "article_reference_count",
    "article_mesh_terms",
];

/// The message of the error the visitor returns to stop parsing early.
const DONE: &str = "loupe: every indexed field seen";

struct Collector<'a>(&'a mut RawIndexFields);

impl<'de> serde::de::Visitor<'de> for Collector<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0u32;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(i) = WANTED.iter().position(|w| *w == key) else {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            };
            let v: Value = map.next_value()?;
            let f = &mut *self.0;
            let slot = match i {
                0 => &mut f.image_file_name,
                1 => &mut f.image_cluster_id,
                2 => &mut f.image_hash,
                3 => &mut f.image_label_id,
                4 => &mut f.image_panel_type,
                5 => &mut f.image_panel_subtype,
                6 => &mut f.image_primary_label,
                7 => &mut f.image_secondary_label,
                8 => &mut f.image_size,
                9 => &mut f.article_accession_id,
                10 => &mut f.article_title,
                11 => &mut f.article_journal,
                12 => &mut f.article_date,
                13 => &mut f.article_citation,
                14 => &mut f.article_license,
                15 => &mut f.article_reference_count,
                _ => &mut f.article_mesh_terms,
            };
            *slot = v;
            seen |= 1 << i;
            if seen == (1 << WANTED.len()) - 1 {
                return Err(serde::de::Error::custom(DONE));
            }
        }
        Ok(())
    }
}

/// Run the collector; an early stop counts as success.
fn collect(bytes: &[u8]) -> Result<RawIndexFields, serde_json::Error> {
    use serde::Deserializer as _;
    let mut raw = RawIndexFields::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match de.deserialize_map(Collector(&mut raw)) {
        Ok(()) => de.end().map(|()| raw),
        Err(e) if e.to_string().starts_with(DONE) => Ok(raw),
        Err(e) => Err(e),
    }
}

impl RawIndexFields {
    fn into_fields(self) -> IndexFields {
        let raw = self;
        let size = list_of_u32(&raw.image_size);
        IndexFields {
            pmcid: text(&raw.article_accession_id),
            license: text(&raw.article_license),
            primary: list_of_text(&raw.image_primary_label),
            secondary: list_of_text(&raw.image_secondary_label),
            label_id: text(&raw.image_label_id),
            panel_type: text(&raw.image_panel_type),
            panel_subtype: text(&raw.image_panel_subtype),
            width: size.first().copied(),
            height: size.get(1).copied(),
            image_hash: text(&raw.image_hash),
            image_id: text(&raw.image_cluster_id),
            image_file_name: text(&raw.image_file_name),
            journal: text(&raw.article_journal),
            date: text(&raw.article_date),
            title: text(&raw.article_title),
            citation: text(&raw.article_citation),
            reference_count: count(&raw.article_reference_count),
            mesh: list_of_text(&raw.article_mesh_terms),
        }
    }
}

/// `serde_json` rejects lone surrogate escapes (`"\ud835"` alone), which the writer's
/// `ensure_ascii` produces from broken source text; retry with them replaced by U+FFFD.
pub fn parse_lenient<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(first) => {
            let fixed = replace_lone_surrogates(bytes);
            if fixed.len() == bytes.len() && fixed == bytes {
                return Err(first.to_string());
            }
            serde_json::from_slice(&fixed).map_err(|_| first.to_string())
        }
    }
}

fn hex4(b: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(b.get(..4)?).ok()?;
    u16::from_str_radix(s, 16).ok()
}

/// Rewrite `\uD800`–`\uDFFF` escapes that are not part of a valid pair as `\uFFFD`.
fn replace_lone_surrogates(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        if bytes[i + 1] != b'u' {
            // Any other escape (including `\\`) is copied whole so its second byte is
            // never mistaken for the start of an escape.
            out.extend_from_slice(&bytes[i..i + 2]);
            i += 2;
            continue;
        }
        let Some(unit) = hex4(&bytes[i + 2..]) else {
            out.extend_from_slice(&bytes[i..i + 2]);
            i += 2;
            continue;
        };
        let is_high = (0xD800..0xDC00).contains(&unit);
        let is_low = (0xDC00..0xE000).contains(&unit);
        let low_follows = bytes.get(i + 6..i + 8) == Some(b"\\u")
            && hex4(&bytes[i + 8..]).is_some_and(|u| (0xDC00..0xE000).contains(&u));
        if is_high && low_follows {
            out.extend_from_slice(&bytes[i..i + 12]);
            i += 12;
        } else if is_high || is_low {
            out.extend_from_slice(b"\\ufffd");
            i += 6;
        } else {
            out.extend_from_slice(&bytes[i..i + 6]);
            i += 6;
        }
    }
    out
}

/// A string field; numbers are written as text, lists give their first text, anything
/// else (null, dicts) is empty. The literal `"None"` is kept: it is what the data says.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items
            .iter()
            .map(text)
            .find(|s| !s.is_empty())
            .unwrap_or_default(),
        Value::Null | Value::Object(_) => String::new(),
    }
}

/// A list of strings: a list gives its non-empty text items, a lone string (other than
/// `"None"`) becomes a one-item list.
pub fn list_of_text(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(text)
            .filter(|s| !s.is_empty() && s != "None")
            .collect(),
        Value::String(s) if !s.is_empty() && s != "None" => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn list_of_u32(v: &Value) -> Vec<u32> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|x| match x {
                Value::Number(n) => n.as_u64().map(|n| n.min(u64::from(u32::MAX)) as u32),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `article_reference_count`: an int, a numeric string, or `[""]` / `"None"` (unknown).
fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Array(items) if items.len() == 1 => count(&items[0]),
        _ => None,
    }
}

/// `article_date` written as Unix seconds (an integer string, maybe with a fraction).
pub fn date_unix(date: &str) -> Option<i64> {
    let d = date.trim();
    let int = d.split_once('.').map_or(d, |(i, _)| i);
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    int.parse().ok()
}

/// The civil (proleptic Gregorian, UTC) year of a Unix time.
pub fn year_of_unix(secs: i64) -> i32 {
    // Howard Hinnant's days-to-civil algorithm.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2)) as i32
}

/// The year of an `article_date` value in any of its forms.
pub fn year_of(date: &str) -> Option<u16> {
    if let Some(secs) = date_unix(date) {
        return u16::try_from(year_of_unix(secs)).ok();
    }
    let b = date.as_bytes();
    (0..b.len().saturating_sub(3)).find_map(|i| {
        let w = &b[i..i + 4];
        let boundary_before = i == 0 || !b[i - 1].is_ascii_digit();
        let boundary_after = b.get(i + 4).is_none_or(|c| !c.is_ascii_digit());
        if boundary_before && boundary_after && w.iter().all(u8::is_ascii_digit) {
            let y: u16 = std::str::from_utf8(w).ok()?.parse().ok()?;
            (1800..=2100).contains(&y).then_some(y)
        } else {
            None
        }
    })
}

/// A whole sample's metadata for the detail view, read lazily from the shard when the
/// sample is selected.
#[derive(Clone, Debug, Default)]
pub struct SampleMeta {
    pub key: String,
    pub caption: String,
    pub fields: IndexFields,
    /// The whole JSON object (the raw tree view walks it).
    pub raw: Value,
}

impl SampleMeta {
    pub fn from_json(key: &str, caption: &str, bytes: &[u8]) -> Result<Self, String> {
        let raw: Value = parse_lenient(bytes)?;
        let fields = parse_index_fields(bytes)?;
        Ok(Self {
            key: key.to_owned(),
            caption: caption.to_owned(),
            fields,
            raw,
        })
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.raw.get(field)
    }

    /// The in-text paragraphs citing this figure: `image_context[image_id]`, falling
    /// back to every paragraph when the id is spelled differently (the ETL normalises
    /// `-` to `.` in some ids).
    pub fn mentions(&self) -> Vec<String> {
        let Some(Value::Object(ctx)) = self.raw.get("image_context") else {
            return Vec::new();
        };
        let id = &self.fields.image_id;
        let alt = id.replace('-', ".");
        let own = ctx.get(id).or_else(|| ctx.get(&alt));
        let lists: Vec<&Value> = match own {
            Some(v) => vec![v],
            None => ctx.values().collect(),
        };
        let mut out: Vec<String> = Vec::new();
        for v in lists {
            for s in list_of_text(v).iter().map(|s| strip_markup(s)) {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// Keywords flattened to text, whatever shape xmltodict gave them.
    pub fn keywords(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(v) = self.raw.get("article_keywords") {
            flatten_text(v, &mut out);
        }
        out
    }

    pub fn mesh_terms(&self) -> Vec<String> {
        self.raw
            .get("article_mesh_terms")
            .map(list_of_text)
            .unwrap_or_default()
    }

    /// `https://pmc.ncbi.nlm.nih.gov/articles/PMCxxxx/`, when the PMCID looks like one.
    pub fn pmc_url(&self) -> Option<String> {
        pmc_url(&self.fields.pmcid)
    }
}

pub fn pmc_url(pmcid: &str) -> Option<String> {
    let digits = pmcid.strip_prefix("PMC")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/"))
}

fn flatten_text(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.is_empty() && s != "None" => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|x| flatten_text(x, out)),
        Value::Object(map) => map.values().for_each(|x| flatten_text(x, out)),
        _ => {}
    }
}

/// In-text paragraphs keep the article's JATS markup (`<xref ref-type="fig" …>Figure
/// 1</xref>`); readers want the words. Drops tags — `<` then a letter or `/`, through
/// the next `>` — and keeps everything else, including a lone `<` as in "p < 0.05".
pub fn strip_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let is_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/');
        match after.find('>') {
            Some(j) if is_tag && !after[..j].contains('<') => rest = &after[j + 1..],
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_stripped_from_mentions_but_comparisons_survive() {
        assert_eq!(
            strip_markup(
                r#"see (<xref ref-type="fig" rid="f1">Figure 1</xref>), p < 0.05 and a<b>"#
            ),
            "see (Figure 1), p < 0.05 and a"
        );
        assert_eq!(strip_markup("x <= 3 < 4"), "x <= 3 < 4");
        assert_eq!(strip_markup("<unclosed"), "<unclosed");
    }
    use super::*;

    #[test]
    fn odd_types_read_leniently() {
        let json =
            br#"{"image_primary_label": "Microscopy", "image_secondary_label": ["a", "", "None"],
            "image_size": ["12", 30], "article_reference_count": [""], "article_date": "None",
            "article_license": "None", "article_accession_id": ["PMC1"], "image_hash": null}"#;
        let f = parse_index_fields(json).unwrap();
        assert_eq!(f.primary, vec!["Microscopy"]);
        assert_eq!(f.secondary, vec!["a"]);
        assert_eq!((f.width, f.height), (Some(12), Some(30)));
        assert_eq!(f.reference_count, None);
        assert_eq!(f.license, "None");
        assert_eq!(f.pmcid, "PMC1");
        assert_eq!(f.image_hash, "");
        assert_eq!((f.date_unix(), f.year()), (None, None));
    }

    #[test]
    fn parsing_stops_once_every_indexed_field_is_seen() {
        let mut json = String::from("{");
        for (i, k) in WANTED.iter().enumerate() {
            json.push_str(&format!("\"{k}\": \"v{i}\", "));
        }
        json.push_str("\"article_text\": \"a very long text that is never needed");
        // The prefix ends inside article_text: still enough.
        let f = try_parse_index_fields(json.as_bytes()).unwrap();
        assert_eq!((f.license.as_str(), f.citation.as_str()), ("v14", "v13"));
        // A prefix ending before the licence is not.
        let cut = json.find("article_license").unwrap();
        assert!(try_parse_index_fields(&json.as_bytes()[..cut]).is_none());
        // A whole object without some fields parses, and trailing junk is an error.
        assert_eq!(
            parse_index_fields(br#"{"article_title": "t"}"#)
                .unwrap()
                .title,
            "t"
        );
        assert!(parse_index_fields(br#"{"a": 1} x"#).is_err());
        assert!(parse_index_fields(b"[1, 2]").is_err());
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let json = br#"{"article_title": "a\ud835b \ud835\udefd c\\ud800", "x": "\udc00"}"#;
        let v: Value = parse_lenient(json).unwrap();
        assert_eq!(v["article_title"], "a\u{FFFD}b \u{1D6FD} c\\ud800");
        assert_eq!(v["x"], "\u{FFFD}");
        assert!(parse_lenient::<Value>(b"[1,").is_err());
    }

    #[test]
    fn dates_and_years() {
        assert_eq!(year_of("1577836800"), Some(2020));
        assert_eq!(year_of("951782400"), Some(2000)); // 2000-02-29
        assert_eq!(year_of("2021 02 29"), Some(2021));
        assert_eq!(year_of("None"), None);
        assert_eq!(year_of_unix(-1), 1969);
        assert_eq!(date_unix("1577836800.5"), Some(1_577_836_800));
    }

    #[test]
    fn pmc_links() {
        assert_eq!(
            pmc_url("PMC176545").as_deref(),
            Some("https://pmc.ncbi.nlm.nih.gov/articles/PMC176545/")
        );
        assert_eq!(pmc_url("None"), None);
    }
}
