//! OpenCLIP's caption cleaning (`_clean_lower` in `open_clip/tokenizer.py`) without Python:
//! `ftfy.fix_text`, `html.unescape` twice, strip, collapse whitespace, lowercase.
//!
//! ftfy is restated for the fixes that change ordinary captions: its own HTML unescape
//! (which also reads upper-cased entities such as `&EACUTE;`), C1 controls read as
//! Windows-1252, Latin ligatures, full/half-width forms, curly quotes, line breaks,
//! terminal escapes, control characters, NFC. Not restated: ftfy's mojibake repair
//! (`fix_encoding`), which only fires on text that was decoded with the wrong codec
//! (`cafÃ©`); such captions tokenise as they are written. The tables come from Python's
//! `html` module and ftfy (`assets/clip/text_tables.tsv`, written by
//! `tools/make_clip_fixture.py`).

use std::collections::{HashMap, HashSet};

use regex::{Captures, Regex};

const TABLES: &str = include_str!("../../assets/clip/text_tables.tsv");

/// The cleaning tables and patterns, built once per tokenizer.
pub struct Cleaner {
    /// `html.entities.html5`: names with and without the `;`.
    html5: HashMap<String, String>,
    /// ftfy's `HTML_ENTITIES`: `&name;` → text, including upper-cased names.
    ftfy: HashMap<String, String>,
    invalid_charrefs: HashMap<u32, String>,
    invalid_codepoints: HashSet<u32>,
    /// Single-character replacements: ligatures, widths, C1 controls.
    ligatures: HashMap<char, String>,
    width: HashMap<char, String>,
    c1: HashMap<char, String>,
    charref_re: Regex,
    ftfy_entity_re: Regex,
    ansi_re: Regex,
}

fn hex_chars(s: &str) -> String {
    s.split_whitespace()
        .filter_map(|h| u32::from_str_radix(h, 16).ok())
        .filter_map(char::from_u32)
        .collect()
}

fn hex_char(s: &str) -> Option<char> {
    u32::from_str_radix(s, 16).ok().and_then(char::from_u32)
}

impl Cleaner {
    pub fn new() -> Result<Self, regex::Error> {
        let mut t = Cleaner {
            html5: HashMap::new(),
            ftfy: HashMap::new(),
            invalid_charrefs: HashMap::new(),
            invalid_codepoints: HashSet::new(),
            ligatures: HashMap::new(),
            width: HashMap::new(),
            c1: HashMap::new(),
            // html._charref
            charref_re: Regex::new(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\x0C <&#;]{1,32};?)")?,
            // ftfy.chardata.HTML_ENTITY_RE
            ftfy_entity_re: Regex::new(r"&#?[0-9A-Za-z]{1,24};")?,
            // ftfy.fixes.ANSI_RE
            ansi_re: Regex::new(r"\x1b\[((?:\d|;)*)([a-zA-Z])")?,
        };
        for line in TABLES.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut f = line.splitn(3, '\t');
            let (Some(kind), Some(key), Some(val)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            match kind {
                "html5" => {
                    t.html5.insert(key.to_string(), hex_chars(val));
                }
                "ftfy" => {
                    t.ftfy.insert(key.to_string(), hex_chars(val));
                }
                "charref" => {
                    if let Ok(k) = u32::from_str_radix(key, 16) {
                        t.invalid_charrefs.insert(k, hex_chars(val));
                    }
                }
                "badcp" => {
                    if let Ok(k) = u32::from_str_radix(key, 16) {
                        t.invalid_codepoints.insert(k);
                    }
                }
                "lig" | "width" | "c1" => {
                    if let Some(c) = hex_char(key) {
                        let map = match kind {
                            "lig" => &mut t.ligatures,
                            "width" => &mut t.width,
                            _ => &mut t.c1,
                        };
                        map.insert(c, hex_chars(val));
                    }
                }
                _ => {}
            }
        }
        Ok(t)
    }

    /// Python's `html.unescape`.
    pub fn html_unescape(&self, s: &str) -> String {
        if !s.contains('&') {
            return s.to_string();
        }
        let t = self;
        t.charref_re
            .replace_all(s, |c: &Captures<'_>| {
                let body = &c[1];
                if let Some(num) = body.strip_prefix('#') {
                    let (digits, radix) = match num.strip_prefix(['x', 'X']) {
                        Some(h) => (h, 16),
                        None => (num, 10),
                    };
                    let digits = digits.trim_end_matches(';');
                    // Python's int() has no bound; anything past u32 is out of range anyway.
                    let n = u32::from_str_radix(digits, radix).unwrap_or(u32::MAX);
                    if let Some(r) = t.invalid_charrefs.get(&n) {
                        return r.clone();
                    }
                    if (0xD800..=0xDFFF).contains(&n) || n > 0x10FFFF {
                        return "\u{FFFD}".into();
                    }
                    if t.invalid_codepoints.contains(&n) {
                        return String::new();
                    }
                    return char::from_u32(n).map(String::from).unwrap_or_default();
                }
                if let Some(v) = t.html5.get(body) {
                    return v.clone();
                }
                // The longest known prefix (at least 2 characters), as the HTML5 standard reads
                // legacy entities without a semicolon (`&ampx` → `&x`).
                let chars: Vec<(usize, char)> = body.char_indices().collect();
                for x in (2..chars.len()).rev() {
                    let cut = chars[x].0;
                    if let Some(v) = t.html5.get(&body[..cut]) {
                        return format!("{v}{}", &body[cut..]);
                    }
                }
                format!("&{body}")
            })
            .into_owned()
    }

    /// ftfy's `unescape_html`: only `&…;` forms, plus upper-cased names.
    fn ftfy_unescape(&self, s: &str) -> String {
        let t = self;
        t.ftfy_entity_re
            .replace_all(s, |c: &Captures<'_>| {
                let m = &c[0];
                if let Some(v) = t.ftfy.get(m) {
                    return v.clone();
                }
                if m.starts_with("&#") {
                    let u = t.html_unescape(m);
                    return if u.contains(';') { m.to_string() } else { u };
                }
                m.to_string()
            })
            .into_owned()
    }
}

fn map_chars(s: &str, map: &HashMap<char, String>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match map.get(&c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    out
}

fn is_ftfy_control(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0x206A..=0x206F | 0xFEFF | 0xFFF9..=0xFFFC)
}

fn nfc(s: &str) -> String {
    let mut n = tokenizers::NormalizedString::from(s);
    n.nfc();
    n.get().to_string()
}

impl Cleaner {
    /// One ftfy segment, fixed until nothing changes (as `fix_and_explain` loops).
    fn fix_segment(&self, mut text: String, unescape: bool) -> String {
        let t = self;
        loop {
            let orig = text.clone();
            if unescape {
                text = t.ftfy_unescape(&text);
            }
            text = map_chars(&text, &t.c1);
            text = map_chars(&text, &t.ligatures);
            text = map_chars(&text, &t.width);
            text = text
                .chars()
                .map(|c| match c {
                    '\u{02BC}' | '\u{2018}'..='\u{201B}' => '\'',
                    '\u{201C}'..='\u{201F}' => '"',
                    c => c,
                })
                .collect();
            text = text
                .replace("\r\n", "\n")
                .replace(['\r', '\u{2028}', '\u{2029}', '\u{0085}'], "\n");
            text = t.ansi_re.replace_all(&text, "").into_owned();
            text.retain(|c| !is_ftfy_control(c));
            text = nfc(&text);
            if text == orig {
                return text;
            }
        }
    }

    /// `ftfy.fix_text` with the default config, less the mojibake repair (see the module
    /// docs). The text is fixed line by line; HTML unescaping stops for good at the first
    /// line that contains `<`, as ftfy's "auto" mode does.
    pub fn ftfy_lite(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut unescape = true;
        for seg in text.split_inclusive('\n') {
            if seg.contains('<') {
                unescape = false;
            }
            out.push_str(&self.fix_segment(seg.to_string(), unescape));
        }
        out
    }
}

/// Python's `str.isspace`: Unicode White_Space plus the information separators
/// U+001C..U+001F, which Python's `str.split()` also splits on.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

/// `whitespace_clean`: runs of whitespace become one space; stripped.
pub fn whitespace_clean(text: &str) -> String {
    text.split(is_py_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Cleaner {
    /// `basic_clean`: ftfy, `html.unescape` twice, strip.
    pub fn basic_clean(&self, text: &str) -> String {
        let t = self.html_unescape(&self.html_unescape(&self.ftfy_lite(text)));
        t.trim_matches(is_py_space).to_string()
    }

    /// `_clean_lower`, OpenCLIP's default cleaning.
    pub fn clean_lower(&self, text: &str) -> String {
        whitespace_clean(&self.basic_clean(text)).to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c() -> Cleaner {
        Cleaner::new().unwrap()
    }

    #[test]
    fn html_unescape_matches_python() {
        assert_eq!(c().html_unescape("H&amp;E &lt;b&gt;"), "H&E <b>");
        assert_eq!(
            c().html_unescape("&ampx &notit; &#128; &#x110000; &#0;"),
            "&x ¬it; € \u{FFFD} \u{FFFD}"
        );
        assert_eq!(c().html_unescape("&nosuch; & &#65"), "&nosuch; & A");
    }

    #[test]
    fn ftfy_fixes() {
        assert_eq!(c().ftfy_lite("P&EACUTE;REZ"), "PÉREZ");
        assert_eq!(c().ftfy_lite("ﬂuﬃeﬆ"), "fluffiest");
        assert_eq!(c().ftfy_lite("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES");
        assert_eq!(c().ftfy_lite("\u{201C}here\u{2019}s\u{201D}"), "\"here's\"");
        assert_eq!(c().ftfy_lite("\u{1b}[36;44mblue\u{1b}[0m"), "blue");
        assert_eq!(c().ftfy_lite("<b>&amp;</b>"), "<b>&amp;</b>");
        assert_eq!(c().ftfy_lite("e\u{301}"), "\u{e9}");
    }

    #[test]
    fn clean() {
        // ftfy drops U+001C before Python's split() could split on it (checked in Python).
        assert_eq!(c().clean_lower("  A\u{1C}B\t\nC  "), "ab c");
        assert_eq!(whitespace_clean(" a\u{1C}b\u{3000}c "), "a b c");
        assert_eq!(c().clean_lower("&amp;amp;lt;"), "<");
    }
}
