//! Caption search: an in-memory inverted index over lowercased word tokens, ranked
//! with BM25.
//!
//! Why not tantivy: it would be the better engine (phrases, stemming, on-disk
//! segments), but it roughly doubles this crate's dependency build on a 2-core machine,
//! and captions are short. A query term matches every indexed term that contains it
//! (so `µm` finds `µmol`, as a substring search would), exact matches rank above
//! partial ones, and every query term must match (AND). Adjacency is not checked:
//! `tab-separated` finds captions holding both `tab` and `separated`.

use std::collections::HashMap;

/// Lowercased runs of alphanumeric characters (any script; CJK runs stay whole and are
/// found by substring matching).
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

#[derive(Default)]
pub struct SearchIndex {
    term_ids: HashMap<String, u32>,
    /// Per term: (item, term frequency) in item order.
    postings: Vec<Vec<(u32, u16)>>,
    doc_len: Vec<u16>,
    total_len: u64,
    scratch_text: String,
    scratch_ids: Vec<u32>,
}

/// One ranked hit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub item: u32,
    pub score: f32,
}

impl SearchIndex {
    /// Add the next item's text; items must be added in id order.
    pub fn add(&mut self, item: u32, text: &str) {
        // One lowercase buffer and one id list reused for every token: building the
        // index for a million captions must not allocate per word.
        let mut buf = std::mem::take(&mut self.scratch_text);
        let mut ids = std::mem::take(&mut self.scratch_ids);
        ids.clear();
        for tok in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
        {
            buf.clear();
            if tok.is_ascii() {
                buf.extend(tok.bytes().map(|b| char::from(b.to_ascii_lowercase())));
            } else {
                buf.push_str(&tok.to_lowercase());
            }
            let id = match self.term_ids.get(buf.as_str()) {
                Some(&id) => id,
                None => {
                    let id = self.postings.len() as u32;
                    self.term_ids.insert(buf.clone(), id);
                    self.postings.push(Vec::new());
                    id
                }
            };
            ids.push(id);
        }
        let len = ids.len();
        ids.sort_unstable();
        let mut i = 0;
        while i < ids.len() {
            let id = ids[i];
            let run = ids[i..].iter().take_while(|&&x| x == id).count();
            self.postings[id as usize].push((item, run.min(usize::from(u16::MAX)) as u16));
            i += run;
        }
        if self.doc_len.len() <= item as usize {
            self.doc_len.resize(item as usize + 1, 0);
        }
        self.doc_len[item as usize] = len.min(usize::from(u16::MAX)) as u16;
        self.total_len += len as u64;
        self.scratch_text = buf;
        self.scratch_ids = ids;
    }

    pub fn term_count(&self) -> usize {
        self.postings.len()
    }

    /// Heap bytes held (postings, lengths, vocabulary), for the benchmark.
    pub fn heap_bytes(&self) -> usize {
        let postings: usize = self
            .postings
            .iter()
            .map(|p| p.capacity() * size_of::<(u32, u16)>() + 24)
            .sum();
        let vocab: usize = self.term_ids.keys().map(|k| k.capacity() + 32).sum();
        postings + vocab + self.doc_len.capacity() * 2
    }

    /// Items matching every query term, best first (ties in item order).
    pub fn search(&self, query: &str) -> Vec<Hit> {
        let query: Vec<String> = tokens(query).collect();
        if query.is_empty() || self.doc_len.is_empty() {
            return Vec::new();
        }
        let n = self.doc_len.len() as f32;
        let avg = (self.total_len as f32 / n).max(1.0);
        let (k1, b) = (1.2f32, 0.75f32);
        // Dense accumulators (8 bytes per item) beat a hash map by far once a query
        // word matches hundreds of thousands of captions.
        let mut scores = vec![0f32; self.doc_len.len()];
        let mut masks = vec![0u32; self.doc_len.len()];
        for (qi, q) in query.iter().enumerate().take(32) {
            let bit = 1u32 << qi;
            for (term, &id) in &self.term_ids {
                let weight = if term == q {
                    1.0
                } else if term.starts_with(q.as_str()) {
                    0.7
                } else if term.contains(q.as_str()) {
                    0.4
                } else {
                    continue;
                };
                let postings = &self.postings[id as usize];
                let df = postings.len() as f32;
                let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                for &(item, tf) in postings {
                    let tf = f32::from(tf);
                    let dl = f32::from(self.doc_len[item as usize]);
                    let s = weight * idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avg));
                    scores[item as usize] += s;
                    masks[item as usize] |= bit;
                }
            }
        }
        let all = if query.len() >= 32 {
            u32::MAX
        } else {
            (1u32 << query.len()) - 1
        };
        let mut hits: Vec<Hit> = masks
            .iter()
            .enumerate()
            .filter(|(_, m)| **m == all)
            .map(|(item, _)| Hit {
                item: item as u32,
                score: scores[item],
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranked_and_partial_matches() {
        let mut s = SearchIndex::default();
        s.add(0, "Fundus photograph of the left eye");
        s.add(1, "Fundus fundus: autofluorescence");
        s.add(2, "Scale bar 50 µm; 10 µmol");
        s.add(3, "Histology of fundic glands");
        let hits: Vec<u32> = s.search("FUNDUS").iter().map(|h| h.item).collect();
        assert_eq!(hits, vec![1, 0]);
        assert_eq!(s.search("µm").len(), 1);
        assert_eq!(s.search("fund").len(), 3);
        assert_eq!(s.search("fundus eye")[0].item, 0);
        assert!(s.search("fundus nothing").is_empty());
        assert!(s.search("  ").is_empty());
    }
}
