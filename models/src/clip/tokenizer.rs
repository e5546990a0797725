//! OpenCLIP's `SimpleTokenizer` (OpenAI CLIP's byte-level BPE), id for id: the vocabulary
//! is built from `bpe_simple_vocab_16e6.txt.gz` exactly as `SimpleTokenizer.__init__`
//! builds it (256 byte symbols, the same with `</w>`, 48,894 merges, then
//! `<start_of_text>` 49406 and `<end_of_text>` 49407).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

use regex::Regex;

use super::Error;
use super::clean::Cleaner;

/// The vocabulary vendored from the open-clip-torch wheel (MIT, see `LICENSE-open_clip`).
const BPE_GZ: &[u8] = include_bytes!("../../assets/clip/bpe_simple_vocab_16e6.txt.gz");

pub const SOT: u32 = 49406;
pub const EOT: u32 = 49407;
pub const DEFAULT_CONTEXT_LENGTH: usize = 77;
/// Merges used: lines 1..=48894 of the file (`merges[1:49152-256-2+1]`).
const N_MERGES: usize = 49152 - 256 - 2;

fn printable(b: u32) -> bool {
    (u32::from('!')..=u32::from('~')).contains(&b)
        || (0xA1..=0xAC).contains(&b)
        || (0xAE..=0xFF).contains(&b)
}

/// The bytes in `bytes_to_unicode()`'s dict order: printable ones first, then the rest
/// (this order numbers the first 512 vocabulary entries).
fn byte_order() -> Vec<u8> {
    let (mut a, b): (Vec<u8>, Vec<u8>) = (0..=255u8).partition(|&b| printable(u32::from(b)));
    a.extend(b);
    a
}

/// GPT-2's byte → printable character table (`bytes_to_unicode`).
fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u32 {
        let c = if printable(b) {
            b
        } else {
            n += 1;
            255 + n
        };
        table[b as usize] = char::from_u32(c).unwrap_or('\u{FFFD}');
    }
    table
}

pub struct Tokenizer {
    encoder: HashMap<String, u32>,
    decoder: Vec<String>,
    /// `(left id, right id)` → rank; both sides as canonical ids of their strings.
    ranks: HashMap<(u32, u32), u32>,
    /// The merged symbol's id per rank.
    merged: Vec<u32>,
    byte_char: [char; 256],
    char_id: HashMap<char, u32>,
    char_end_id: HashMap<char, u32>,
    pattern: Regex,
    cleaner: Cleaner,
    context_length: usize,
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

impl Tokenizer {
    /// The standard vocabulary (embedded) and a context length.
    pub fn new(context_length: usize) -> Result<Self, Error> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(BPE_GZ)
            .read_to_string(&mut text)
            .map_err(|e| Error::Tokenizer(format!("bpe_simple_vocab_16e6.txt.gz: {e}")))?;
        Self::from_merges_text(&text, context_length)
    }

    /// From the text of a `bpe_simple_vocab_16e6.txt`-style merges file.
    pub fn from_merges_text(text: &str, context_length: usize) -> Result<Self, Error> {
        if context_length < 2 {
            return Err(Error::Tokenizer("context length must be at least 2".into()));
        }
        let merges: Vec<(&str, &str)> = text
            .split('\n')
            .skip(1)
            .take(N_MERGES)
            .map(|l| {
                let mut it = l.split_whitespace();
                match (it.next(), it.next()) {
                    (Some(a), Some(b)) => Ok((a, b)),
                    _ => Err(Error::Tokenizer(format!("bad merge line {l:?}"))),
                }
            })
            .collect::<Result<_, _>>()?;
        if merges.len() != N_MERGES {
            return Err(Error::Tokenizer(format!(
                "the BPE file has {} merges, {N_MERGES} expected",
                merges.len()
            )));
        }
        let byte_char = bytes_to_unicode();
        let order = byte_order();
        let mut vocab: Vec<String> = order
            .iter()
            .map(|&b| byte_char[b as usize].to_string())
            .collect();
        vocab.extend(
            order
                .iter()
                .map(|&b| format!("{}</w>", byte_char[b as usize])),
        );
        vocab.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        vocab.push("<start_of_text>".into());
        vocab.push("<end_of_text>".into());
        // `dict(zip(vocab, range(len(vocab))))`: a repeated string keeps its last id.
        let mut encoder = HashMap::with_capacity(vocab.len());
        for (i, v) in vocab.iter().enumerate() {
            encoder.insert(v.clone(), i as u32);
        }
        let id = |s: &str| -> Result<u32, Error> {
            encoder.get(s).copied().ok_or_else(|| {
                Error::Tokenizer(format!("merge part {s:?} is not in the vocabulary"))
            })
        };
        let mut ranks = HashMap::with_capacity(N_MERGES);
        let mut merged = Vec::with_capacity(N_MERGES);
        for (rank, (a, b)) in merges.iter().enumerate() {
            ranks.insert((id(a)?, id(b)?), rank as u32);
            merged.push(id(&format!("{a}{b}"))?);
        }
        let mut char_id = HashMap::new();
        let mut char_end_id = HashMap::new();
        for c in byte_char {
            char_id.insert(c, id(&c.to_string())?);
            char_end_id.insert(c, id(&format!("{c}</w>"))?);
        }
        let pattern = Regex::new(
            r"(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        )
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Self {
            encoder,
            decoder: vocab,
            ranks,
            merged,
            byte_char,
            char_id,
            char_end_id,
            pattern,
            cleaner: Cleaner::new().map_err(|e| Error::Tokenizer(e.to_string()))?,
            context_length,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn context_length(&self) -> usize {
        self.context_length
    }

    pub fn vocab_size(&self) -> usize {
        self.decoder.len()
    }

    /// OpenCLIP's caption cleaning (see [`super::clean`]).
    pub fn clean(&self, text: &str) -> String {
        self.cleaner.clean_lower(text)
    }

    /// BPE of one pre-token (already mapped to byte characters).
    fn bpe(&self, token: &str) -> Vec<u32> {
        let chars: Vec<char> = token.chars().collect();
        let Some((&last, rest)) = chars.split_last() else {
            return Vec::new();
        };
        let mut word: Vec<u32> = rest
            .iter()
            .map(|c| self.char_id.get(c).copied().unwrap_or(0))
            .collect();
        word.push(self.char_end_id.get(&last).copied().unwrap_or(0));
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|p| self.ranks.get(&(p[0], p[1])).map(|&r| (r, p[0], p[1])))
                .min();
            let Some((rank, first, second)) = best else {
                break;
            };
            let new_id = self.merged[rank as usize];
            // Merge every occurrence, left to right without overlaps, as the reference does.
            let mut out = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == first && word[i + 1] == second {
                    out.push(new_id);
                    i += 2;
                } else {
                    out.push(word[i]);
                    i += 1;
                }
            }
            word = out;
        }
        word
    }

    /// Token ids of a caption, without start/end tokens (`SimpleTokenizer.encode`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let text = self.clean(text);
        let mut ids = Vec::new();
        for m in self.pattern.find_iter(&text) {
            let piece = m.as_str();
            match piece {
                "<start_of_text>" => ids.push(SOT),
                "<end_of_text>" => ids.push(EOT),
                _ => {
                    let mapped: String =
                        piece.bytes().map(|b| self.byte_char[b as usize]).collect();
                    if let Ok(cache) = self.cache.lock()
                        && let Some(hit) = cache.get(&mapped)
                    {
                        ids.extend_from_slice(hit);
                        continue;
                    }
                    let bpe = self.bpe(&mapped);
                    ids.extend_from_slice(&bpe);
                    if let Ok(mut cache) = self.cache.lock() {
                        // Bounded: captions are open-ended, the cache is only a speed-up.
                        if cache.len() > 100_000 {
                            cache.clear();
                        }
                        cache.insert(mapped, bpe);
                    }
                }
            }
        }
        ids
    }

    /// `[SOT] + encode(text) + [EOT]`, cut to the context length with the last token
    /// forced to EOT, zero-padded (`SimpleTokenizer.__call__`).
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let n = self.context_length;
        let mut ids = Vec::with_capacity(n);
        ids.push(SOT);
        ids.extend(self.encode(text));
        ids.push(EOT);
        if ids.len() > n {
            ids.truncate(n);
            ids[n - 1] = EOT;
        }
        ids.resize(n, 0);
        ids
    }

    pub fn tokenize_batch(&self, texts: &[&str]) -> Vec<Vec<u32>> {
        texts.iter().map(|t| self.tokenize(t)).collect()
    }

    /// Text of ids (`SimpleTokenizer.decode`): `</w>` becomes a space.
    pub fn decode(&self, ids: &[u32]) -> String {
        let inverse: HashMap<char, u8> = self
            .byte_char
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        let text: String = ids
            .iter()
            .filter_map(|&i| self.decoder.get(i as usize))
            .map(String::as_str)
            .collect();
        let bytes: Vec<u8> = text
            .replace("</w>", " ")
            .chars()
            .filter_map(|c| {
                if c == ' ' {
                    Some(b' ')
                } else {
                    inverse.get(&c).copied()
                }
            })
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The id of a vocabulary string, if any.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.encoder.get(token).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids() {
        let t = Tokenizer::new(DEFAULT_CONTEXT_LENGTH).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.vocab_size(), 49408);
        assert_eq!(
            t.encode("a photo of a cat"),
            vec![320, 1125, 539, 320, 2368]
        );
        let ids = t.tokenize("");
        assert_eq!(&ids[..3], &[SOT, EOT, 0]);
        assert_eq!(ids.len(), 77);
        assert_eq!(t.decode(&t.encode("hello world")), "hello world ");
    }
}
