//! The merged, compact item table of every opened shard, and the filters over it.
//!
//! Strings that repeat (licences, journals, label sets, panel types) are interned to
//! small ids, so one item is a fixed-size record plus its key and a caption prefix in a
//! shared arena. Filters are a linear pass over the records with table look-ups: a few
//! milliseconds for a million items, fast enough to rerun on every keystroke.

use super::search::{Hit, SearchIndex};
use super::tar_index::{Ext, ShardIndex, flags};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub type ItemId = u32;

/// Characters of the caption kept in memory for tiles and lists.
pub const CAPTION_PREFIX_CHARS: usize = 48;

/// One indexed sample: a fixed-size 64-byte record (checked by a test); strings live in
/// the catalog's arena and interned tables.
#[derive(Clone, Copy, Debug)]
pub struct Item {
    /// Data offset of the jpg (of the first present member when there is no jpg).
    base: u64,
    /// Data offsets of json and txt relative to `base`: a sample's members are adjacent,
    /// so 32 bits are plenty and the record stays within 64 bytes.
    rel: [i32; 2],
    /// Data size of jpg, json, txt; `u32::MAX` marks a missing member.
    member_size: [u32; 3],
    /// Key then caption prefix in the arena.
    text_at: u32,
    key_len: u8,
    prefix_len: u8,
    pub shard: u16,
    pub flags: u8,
    pub license: u8,
    pub panel_type: u8,
    pub panel_subtype: u8,
    pub primary: u16,
    pub secondary: u16,
    pub journal: u32,
    pub year: u16,
    /// Source image size from the JSON, saturated to 65535.
    pub width: u16,
    pub height: u16,
    pub caption_chars: u16,
    /// First 64 bits of `image_hash` (0 when absent): enough to group duplicates.
    pub hash: u64,
}

const MISSING: u32 = u32::MAX;

/// A string table: id ↔ text.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_owned());
        self.ids.insert(s.to_owned(), id);
        id
    }
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }
    pub fn id(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Distinct label sets (labels per cluster, so a few thousand at most).
#[derive(Clone, Debug, Default)]
pub struct LabelSets {
    pub labels: Interner,
    sets: Vec<Vec<u32>>,
    ids: HashMap<Vec<u32>, u16>,
}

impl LabelSets {
    /// Intern a label list as a set (sorted, duplicates dropped).
    fn intern(&mut self, list: &[String]) -> u16 {
        let mut set: Vec<u32> = list.iter().map(|l| self.labels.intern(l)).collect();
        set.sort_unstable();
        set.dedup();
        if let Some(&id) = self.ids.get(&set) {
            return id;
        }
        let id = u16::try_from(self.sets.len()).unwrap_or(u16::MAX);
        self.sets.push(set.clone());
        self.ids.insert(set, id);
        id
    }
    pub fn names(&self, set: u16) -> Vec<&str> {
        self.sets
            .get(usize::from(set))
            .map(|s| s.iter().map(|&l| self.labels.name(l)).collect())
            .unwrap_or_default()
    }
    /// For each set id: does it hold `label`?
    fn holding(&self, label: &str) -> Vec<bool> {
        let id = self.labels.id(label);
        self.sets
            .iter()
            .map(|s| id.is_some_and(|id| s.contains(&id)))
            .collect()
    }
}

/// One opened shard (or Parquet file).
#[derive(Clone, Debug)]
pub struct ShardInfo {
    pub path: Arc<Path>,
    pub subset: u8,
    pub samples: usize,
    /// One line per problem, naming the file.
    pub report: Vec<String>,
    pub damaged: bool,
}

/// Which items to show. Empty lists and `None` mean "any".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub subsets: Vec<String>,
    pub licenses: Vec<String>,
    pub primary: Option<String>,
    pub secondary: Option<String>,
    pub panel_type: Option<String>,
    pub journal: Option<String>,
    /// Inclusive year range.
    pub years: Option<(u16, u16)>,
    /// Inclusive range of the longer image side in pixels.
    pub long_side: Option<(u32, u32)>,
    pub duplicates_only: bool,
    /// Only the items sharing this image hash (one duplicate group).
    pub same_image: Option<u64>,
    pub problems_only: bool,
    /// Text search; when set, results come best first.
    pub query: String,
    /// What the text search looks in.
    pub search_in: SearchIn,
}

/// The text the search box searches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SearchIn {
    #[default]
    Captions,
    /// Article titles and MeSH terms.
    Articles,
    /// Captions, titles and MeSH terms (scores added).
    Both,
}

#[derive(Default)]
pub struct Catalog {
    items: Vec<Item>,
    arena: String,
    pub shards: Vec<ShardInfo>,
    pub subsets: Interner,
    pub licenses: Interner,
    pub journals: Interner,
    pub panel_types: Interner,
    pub panel_subtypes: Interner,
    pub primary: LabelSets,
    pub secondary: LabelSets,
    duplicates: HashMap<u64, u32>,
    /// Per item: how many items share its image hash (filled by [`Catalog::finish`]).
    dup_count: Vec<u32>,
    search: SearchIndex,
    /// Titles and MeSH terms, per item (an article's are repeated for each figure).
    article_search: SearchIndex,
}

fn hash64(hex: &str) -> u64 {
    hex.get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

fn sat16(v: Option<u32>) -> u16 {
    v.map_or(0, |v| v.min(u32::from(u16::MAX)) as u16)
}

impl Catalog {
    /// Merge a shard's index. Its captions go into the search index and are dropped
    /// (only a prefix is kept); the full caption is read from the shard on selection.
    pub fn add_shard(&mut self, index: ShardIndex) {
        self.dup_count.clear();
        let shard = u16::try_from(self.shards.len()).unwrap_or(u16::MAX);
        let subset = self.subsets.intern(&super::subset_of(&index.path)) as u8;
        let report = index.report();
        self.shards.push(ShardInfo {
            path: Arc::from(index.path.as_path()),
            subset,
            samples: index.samples.len(),
            damaged: index.structural.is_some(),
            report,
        });
        self.items.reserve(index.samples.len());
        for s in index.samples {
            let id = self.items.len() as ItemId;
            let text_at = self.arena.len() as u32;
            let key = truncate_bytes(&s.key, 255);
            self.arena.push_str(key);
            // One line for tiles: captions hold newlines and tabs.
            let prefix: String = s
                .caption
                .chars()
                .take(CAPTION_PREFIX_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let prefix = truncate_bytes(&prefix, 255);
            self.arena.push_str(prefix);
            self.search.add(id, &s.caption);
            match &s.fields {
                Some(f) => {
                    let mut text = f.title.clone();
                    for m in &f.mesh {
                        text.push('\n');
                        text.push_str(m);
                    }
                    self.article_search.add(id, &text);
                }
                None => self.article_search.add(id, ""),
            }
            let base = Ext::ALL
                .iter()
                .find_map(|&e| s.readable(e))
                .map_or(0, |m| m.offset);
            let mut rel = [0i32; 2];
            let mut member_size = [MISSING; 3];
            for ext in Ext::ALL {
                let Some(m) = s.readable(ext) else { continue };
                let Ok(size) = u32::try_from(m.size).map(|v| v.min(MISSING - 1)) else {
                    continue;
                };
                // A member over 2 GB away from its sample's first member cannot occur in
                // a tar written sample by sample; such a member is left unreachable.
                let Ok(r) = i32::try_from(m.offset as i64 - base as i64) else {
                    continue;
                };
                if ext != Ext::Jpg {
                    rel[ext as usize - 1] = r;
                }
                member_size[ext as usize] = size;
            }
            let caption_chars = sat16(Some(s.caption.chars().count() as u32));
            let mut item = Item {
                base,
                rel,
                member_size,
                text_at,
                key_len: key.len() as u8,
                prefix_len: prefix.len() as u8,
                shard,
                flags: s.flags,
                license: 0,
                panel_type: 0,
                panel_subtype: 0,
                primary: 0,
                secondary: 0,
                journal: 0,
                year: 0,
                width: 0,
                height: 0,
                caption_chars,
                hash: 0,
            };
            let empty = super::meta::IndexFields::default();
            let f = s.fields.as_ref().unwrap_or(&empty);
            item.license = self.licenses.intern(&f.license).min(255) as u8;
            item.panel_type = self.panel_types.intern(&f.panel_type).min(255) as u8;
            item.panel_subtype = self.panel_subtypes.intern(&f.panel_subtype).min(255) as u8;
            item.primary = self.primary.intern(&f.primary);
            item.secondary = self.secondary.intern(&f.secondary);
            item.journal = self.journals.intern(&f.journal);
            item.year = f.year().unwrap_or(0);
            item.width = sat16(f.width);
            item.height = sat16(f.height);
            item.hash = hash64(&f.image_hash);
            if item.hash != 0 {
                *self.duplicates.entry(item.hash).or_default() += 1;
            }
            self.items.push(item);
        }
    }

    /// Call once every shard is added: precomputes per-item duplicate counts so the
    /// duplicates filter is a plain array read.
    pub fn finish(&mut self) {
        self.dup_count = self
            .items
            .iter()
            .map(|it| {
                if it.hash == 0 {
                    0
                } else {
                    self.duplicates.get(&it.hash).copied().unwrap_or(1)
                }
            })
            .collect();
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn item(&self, id: ItemId) -> Option<&Item> {
        self.items.get(id as usize)
    }

    pub fn key(&self, id: ItemId) -> &str {
        self.item(id).map_or("", |it| {
            let at = it.text_at as usize;
            self.arena
                .get(at..at + usize::from(it.key_len))
                .unwrap_or("")
        })
    }

    pub fn caption_prefix(&self, id: ItemId) -> &str {
        self.item(id).map_or("", |it| {
            let at = it.text_at as usize + usize::from(it.key_len);
            self.arena
                .get(at..at + usize::from(it.prefix_len))
                .unwrap_or("")
        })
    }

    pub fn shard_of(&self, id: ItemId) -> Option<&ShardInfo> {
        self.item(id)
            .and_then(|it| self.shards.get(usize::from(it.shard)))
    }

    pub fn subset(&self, id: ItemId) -> &str {
        self.shard_of(id)
            .map_or("", |s| self.subsets.name(u32::from(s.subset)))
    }

    pub fn license(&self, id: ItemId) -> &str {
        self.item(id)
            .map_or("", |it| self.licenses.name(u32::from(it.license)))
    }

    pub fn journal(&self, id: ItemId) -> &str {
        self.item(id)
            .map_or("", |it| self.journals.name(it.journal))
    }

    pub fn panel_type(&self, id: ItemId) -> &str {
        self.item(id)
            .map_or("", |it| self.panel_types.name(u32::from(it.panel_type)))
    }

    pub fn primary_labels(&self, id: ItemId) -> Vec<&str> {
        self.item(id)
            .map(|it| self.primary.names(it.primary))
            .unwrap_or_default()
    }

    pub fn secondary_labels(&self, id: ItemId) -> Vec<&str> {
        self.item(id)
            .map(|it| self.secondary.names(it.secondary))
            .unwrap_or_default()
    }

    /// How many items share this item's image hash (1 = unique, 0 = no hash).
    pub fn duplicate_count(&self, id: ItemId) -> u32 {
        if let Some(&n) = self.dup_count.get(id as usize) {
            return n;
        }
        self.item(id)
            .filter(|it| it.hash != 0)
            .map_or(0, |it| self.duplicates.get(&it.hash).copied().unwrap_or(1))
    }

    /// Every item with the same image hash, in item order.
    pub fn duplicates_of(&self, id: ItemId) -> Vec<ItemId> {
        let Some(hash) = self.item(id).map(|it| it.hash).filter(|&h| h != 0) else {
            return vec![id];
        };
        (0..self.items.len() as ItemId)
            .filter(|&i| self.items[i as usize].hash == hash)
            .collect()
    }

    /// Where a member's bytes are: (shard path, offset, size).
    pub fn member(&self, id: ItemId, ext: Ext) -> Option<(Arc<Path>, u64, u64)> {
        let it = self.item(id)?;
        let size = it.member_size[ext as usize];
        if size == MISSING {
            return None;
        }
        let shard = self.shards.get(usize::from(it.shard))?;
        let offset = match ext {
            Ext::Jpg => it.base,
            Ext::Json | Ext::Txt => it
                .base
                .checked_add_signed(i64::from(it.rel[ext as usize - 1]))?,
        };
        Some((shard.path.clone(), offset, u64::from(size)))
    }

    /// Read a member's bytes from its shard (blocking: call from a job).
    pub fn read_member(&self, id: ItemId, ext: Ext) -> std::io::Result<Vec<u8>> {
        let Some((path, offset, size)) = self.member(id, ext) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} has no readable .{}", self.key(id), ext.as_str()),
            ));
        };
        read_range(&path, offset, size)
    }

    pub fn search(&self, query: &str) -> Vec<Hit> {
        self.search.search(query)
    }

    pub fn search_index(&self) -> &SearchIndex {
        &self.search
    }

    /// Bytes held per item by the record table and the string arena (not the search
    /// index), for the benchmark.
    pub fn bytes_per_item(&self) -> (usize, f64) {
        let n = self.items.len().max(1);
        (size_of::<Item>(), self.arena.len() as f64 / n as f64)
    }

    /// The items passing `filter`: best first when searching, else in shard order.
    pub fn apply(&self, filter: &Filter) -> Vec<ItemId> {
        let subsets: Vec<u32> = filter
            .subsets
            .iter()
            .filter_map(|s| self.subsets.id(s))
            .collect();
        let licenses: Vec<u32> = filter
            .licenses
            .iter()
            .filter_map(|s| self.licenses.id(s))
            .collect();
        // A named value that no item has matches nothing.
        let none_if_unknown = |wanted: &Option<String>, table: &Interner| match wanted {
            None => Ok(None),
            Some(name) => table.id(name).map(Some).ok_or(()),
        };
        let (Ok(panel), Ok(journal)) = (
            none_if_unknown(&filter.panel_type, &self.panel_types),
            none_if_unknown(&filter.journal, &self.journals),
        ) else {
            return Vec::new();
        };
        if (!filter.subsets.is_empty() && subsets.is_empty())
            || (!filter.licenses.is_empty() && licenses.is_empty())
        {
            return Vec::new();
        }
        let primary = filter.primary.as_ref().map(|l| self.primary.holding(l));
        let secondary = filter.secondary.as_ref().map(|l| self.secondary.holding(l));
        let shard_subset: Vec<u32> = self.shards.iter().map(|s| u32::from(s.subset)).collect();
        let keep = |id: ItemId| -> bool {
            let it = &self.items[id as usize];
            (subsets.is_empty()
                || shard_subset
                    .get(usize::from(it.shard))
                    .is_some_and(|s| subsets.contains(s)))
                && (licenses.is_empty() || licenses.contains(&u32::from(it.license)))
                && panel.is_none_or(|p| u32::from(it.panel_type) == p)
                && journal.is_none_or(|j| it.journal == j)
                && primary
                    .as_ref()
                    .is_none_or(|t| t.get(usize::from(it.primary)) == Some(&true))
                && secondary
                    .as_ref()
                    .is_none_or(|t| t.get(usize::from(it.secondary)) == Some(&true))
                && filter
                    .years
                    .is_none_or(|(lo, hi)| it.year != 0 && (lo..=hi).contains(&it.year))
                && filter
                    .long_side
                    .is_none_or(|(lo, hi)| (lo..=hi).contains(&u32::from(it.width.max(it.height))))
                && (!filter.duplicates_only || self.duplicate_count(id) > 1)
                && filter.same_image.is_none_or(|h| h != 0 && it.hash == h)
                && (!filter.problems_only || it.flags != 0)
        };
        if filter.query.trim().is_empty() {
            (0..self.items.len() as ItemId)
                .filter(|&i| keep(i))
                .collect()
        } else {
            self.search_in(&filter.query, filter.search_in)
                .into_iter()
                .map(|h| h.item)
                .filter(|&i| keep(i))
                .collect()
        }
    }

    /// Ranked hits in captions, article titles + MeSH terms, or both (an item's scores
    /// from the two indexes added; it matches if either matches).
    pub fn search_in(&self, query: &str, scope: SearchIn) -> Vec<Hit> {
        match scope {
            SearchIn::Captions => self.search.search(query),
            SearchIn::Articles => self.article_search.search(query),
            SearchIn::Both => {
                let mut score: HashMap<u32, f32> = HashMap::new();
                for h in self
                    .search
                    .search(query)
                    .into_iter()
                    .chain(self.article_search.search(query))
                {
                    *score.entry(h.item).or_default() += h.score;
                }
                let mut hits: Vec<Hit> = score
                    .into_iter()
                    .map(|(item, score)| Hit { item, score })
                    .collect();
                hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
                hits
            }
        }
    }

    /// Distinct years present, ascending.
    pub fn years(&self) -> (u16, u16) {
        let mut lo = u16::MAX;
        let mut hi = 0;
        for it in &self.items {
            if it.year != 0 {
                lo = lo.min(it.year);
                hi = hi.max(it.year);
            }
        }
        if lo > hi { (0, 0) } else { (lo, hi) }
    }

    pub fn has_problems(&self, id: ItemId) -> bool {
        self.item(id).is_some_and(|it| it.flags != 0)
    }

    pub fn is_damaged(&self, id: ItemId) -> bool {
        self.item(id)
            .is_some_and(|it| it.flags & flags::DAMAGED != 0)
    }

    /// Problem lines of every shard.
    pub fn reports(&self) -> impl Iterator<Item = &str> {
        self.shards
            .iter()
            .flat_map(|s| s.report.iter().map(String::as_str))
    }

    pub fn shard_paths(&self) -> Vec<PathBuf> {
        self.shards.iter().map(|s| s.path.to_path_buf()).collect()
    }
}

fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Read `size` bytes at `offset` of `path`.
pub fn read_range(path: &Path, offset: u64, size: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.take(size).read_to_end(&mut buf)?;
    if (buf.len() as u64) < size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "{}: {} of {size} bytes at offset {offset}",
                path.display(),
                buf.len()
            ),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_a_64_byte_record() {
        assert_eq!(size_of::<Item>(), 64);
    }

    #[test]
    fn duplicate_counts_are_precomputed_and_agree_with_the_groups() {
        let dir = tempfile::tempdir().unwrap();
        let shards =
            super::super::synth::write_shards(&dir.path().join("s"), 400, 200, 64).unwrap();
        let (cat, _) =
            super::super::build_catalog(&shards, &dir.path().join("side"), &|_, _| {}, &|| false)
                .unwrap();
        assert_eq!(cat.dup_count.len(), cat.len());
        let dups = cat.apply(&Filter {
            duplicates_only: true,
            ..Default::default()
        });
        assert!(!dups.is_empty() && dups.len() < cat.len());
        for &id in &dups {
            let group = cat.duplicates_of(id);
            assert_eq!(group.len() as u32, cat.duplicate_count(id));
            assert!(group.len() > 1 && group.contains(&id));
        }
    }
}
