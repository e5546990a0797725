//! One pass over a WebDataset tar shard: headers are read, image data is seeked over,
//! captions and JSON metadata (small next to the image) are read and parsed.
//!
//! Header fields are decoded with the `tar` crate (octal and base-256 sizes, ustar
//! prefix + name, PAX records); the walk itself is ours, because a damaged shard must be
//! reported precisely (offset, member, what is wrong) and everything before the damage
//! kept, which a plain `Archive::entries` iterator cannot tell us.

use super::meta::{self, IndexFields};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The three member kinds BIOMEDICA writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ext {
    Jpg,
    Json,
    Txt,
}

impl Ext {
    pub const ALL: [Self; 3] = [Self::Jpg, Self::Json, Self::Txt];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpg => "jpg",
            Self::Json => "json",
            Self::Txt => "txt",
        }
    }

    fn dotted(self) -> &'static str {
        match self {
            Self::Jpg => ".jpg",
            Self::Json => ".json",
            Self::Txt => ".txt",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Split a member name into key and extension at the known suffix at its **end**: keys
/// contain dots (`…-pone.0102872.g001.jpg`), so WebDataset's first-dot rule is wrong here.
pub fn split_name(name: &str) -> Option<(&str, Ext)> {
    let name = name.strip_prefix("./").unwrap_or(name);
    Ext::ALL.into_iter().find_map(|ext| {
        name.strip_suffix(ext.dotted())
            .filter(|key| !key.is_empty())
            .map(|key| (key, ext))
    })
}

/// Where one member's data lies in the shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberRef {
    /// The member's first header block (its PAX `x` / GNU `L` block if it has one).
    pub header_offset: u64,
    /// First data byte.
    pub offset: u64,
    /// Data bytes, as the header declares.
    pub size: u64,
    /// False when the data runs past the end of the file.
    pub complete: bool,
}

/// JPEG frame facts read from the first bytes of the member (no decoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JpegInfo {
    pub width: u16,
    pub height: u16,
    /// 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK.
    pub components: u8,
}

/// Per-sample flags.
pub mod flags {
    /// Hit by a structural error of the shard (truncation, bad header): some members
    /// may be unreadable.
    pub const DAMAGED: u8 = 1;
    pub const INVALID_UTF8: u8 = 2;
    pub const BAD_JPEG: u8 = 4;
    pub const BAD_JSON: u8 = 8;
    pub const MISSING_MEMBER: u8 = 16;
}

/// One sample (members sharing a key) as indexed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SampleRecord {
    pub key: String,
    /// Indexed by [`Ext`]: jpg, json, txt.
    pub members: [Option<MemberRef>; 3],
    /// `None` without a readable `.json`.
    pub fields: Option<IndexFields>,
    /// The caption (lossy UTF-8); empty without a `.txt`.
    pub caption: String,
    pub jpeg: Option<JpegInfo>,
    pub flags: u8,
}

impl SampleRecord {
    pub fn member(&self, ext: Ext) -> Option<&MemberRef> {
        self.members[ext.index()].as_ref()
    }

    /// A member whose bytes can be read (present and complete).
    pub fn readable(&self, ext: Ext) -> Option<&MemberRef> {
        self.member(ext).filter(|m| m.complete)
    }

    pub fn caption_chars(&self) -> usize {
        self.caption.chars().count()
    }
}

/// What kind of trouble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// The file ends inside a header or a member's data (a partial download).
    UnexpectedEof,
    BadHeaderChecksum,
    /// A header declares more data than the file holds although the file is whole-block
    /// sized (the header lies rather than the download stopping).
    MemberPastEof,
    /// A header field that cannot be parsed (size, PAX record).
    BadHeader,
    /// Every member is whole but the two zero blocks that end a tar are missing.
    MissingEndOfArchive,
    InvalidUtf8,
    JpegDecodeError,
    BadJson,
    MissingMember,
    /// A member that is not `.jpg`/`.json`/`.txt` (skipped).
    UnknownMember,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnexpectedEof => "unexpected_eof",
            Self::BadHeaderChecksum => "bad_header_checksum",
            Self::MemberPastEof => "member_past_eof",
            Self::BadHeader => "bad_header",
            Self::MissingEndOfArchive => "missing_end_of_archive",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::JpegDecodeError => "jpeg_decode_error",
            Self::BadJson => "bad_json",
            Self::MissingMember => "missing_member",
            Self::UnknownMember => "unknown_member",
        }
    }

    pub(crate) const ALL: [Self; 10] = [
        Self::UnexpectedEof,
        Self::BadHeaderChecksum,
        Self::MemberPastEof,
        Self::BadHeader,
        Self::MissingEndOfArchive,
        Self::InvalidUtf8,
        Self::JpegDecodeError,
        Self::BadJson,
        Self::MissingMember,
        Self::UnknownMember,
    ];
}

/// A problem with one sample's content; the shard itself reads on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub member: Option<Ext>,
    pub kind: ProblemKind,
    pub detail: String,
}

/// The error that stopped the walk: tar cannot resync after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructuralError {
    pub kind: ProblemKind,
    pub offset: u64,
    /// The member's name as far as it could be read.
    pub member: String,
    pub detail: String,
}

/// Everything known about one shard after one pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardIndex {
    pub path: PathBuf,
    /// File length and modification time when indexed: the sidecar is stale when
    /// either changed.
    pub len: u64,
    pub mtime_ns: i64,
    pub samples: Vec<SampleRecord>,
    pub problems: Vec<Problem>,
    pub structural: Option<StructuralError>,
    /// Offset of the end-of-archive zero blocks, when present.
    pub end_of_archive: Option<u64>,
    /// Members with other suffixes, skipped.
    pub ignored_members: u32,
}

impl ShardIndex {
    /// True when the walk ended on the end-of-archive blocks with no error.
    pub fn is_clean(&self) -> bool {
        self.structural.is_none() && self.end_of_archive.is_some()
    }

    /// One line per problem, each naming the file.
    pub fn report(&self) -> Vec<String> {
        let file = self.path.display();
        let mut out = Vec::new();
        if let Some(e) = &self.structural {
            out.push(format!(
                "{file}: {} at offset {} ({}): {}; reading stopped, {} samples before it are usable",
                e.kind.as_str(),
                e.offset,
                e.member,
                e.detail,
                self.samples
                    .iter()
                    .filter(|s| s.flags & flags::DAMAGED == 0)
                    .count()
            ));
        } else if self.end_of_archive.is_none() {
            out.push(format!(
                "{file}: missing_end_of_archive at offset {}: the tar ends without its two zero blocks (a download stopped between members?)",
                self.len
            ));
        }
        for p in &self.problems {
            let member = p
                .member
                .map_or(String::new(), |m| format!(".{}", m.as_str()));
            out.push(format!(
                "{file}: {}{member}: {}: {}",
                p.key,
                p.kind.as_str(),
                p.detail
            ));
        }
        out
    }
}

/// Why indexing produced no index at all.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cancelled")]
    Cancelled,
}

/// Largest caption / JSON member read into memory; a bigger one is reported, not read.
const MAX_TEXT_MEMBER: u64 = 256 << 20;
/// Largest PAX / GNU long-name payload accepted.
const MAX_EXTENSION: u64 = 1 << 20;
/// How much of a JSON member is read first: the indexed fields come before the article
/// text, so this is usually all that is parsed (see `meta::try_parse_index_fields`).
const JSON_HEAD: u64 = 64 << 10;
/// How much of a JPEG is read to find its frame header.
const JPEG_HEAD: u64 = 8 << 10;

/// A seekable reader that knows where it is, so skipping small distances stays in the
/// buffer and large ones become one `lseek`.
struct Cursor {
    r: BufReader<File>,
    pos: u64,
}

impl Cursor {
    fn goto(&mut self, offset: u64) -> std::io::Result<()> {
        if offset != self.pos {
            let delta = offset as i128 - self.pos as i128;
            if let Ok(delta) = i64::try_from(delta) {
                self.r.seek_relative(delta)?;
            } else {
                self.r.seek(SeekFrom::Start(offset))?;
            }
            self.pos = offset;
        }
        Ok(())
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.goto(offset)?;
        self.r.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn read_vec(&mut self, offset: u64, len: u64, buf: &mut Vec<u8>) -> std::io::Result<()> {
        buf.clear();
        buf.resize(len as usize, 0);
        self.read_at(offset, buf)
    }
}

/// The modification time of `meta` in nanoseconds since the epoch (0 if unknown).
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn header_checksum(block: &[u8; 512]) -> u32 {
    block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum()
}

fn trim_field(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_matches(|c| c == '\0' || c == ' ')
        .to_owned()
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |n| &bytes[..n])
}

/// Read the frame header of a JPEG from its first bytes. `Ok(None)` when the markers
/// are sound but the frame header lies beyond the bytes given.
pub fn jpeg_info(head: &[u8]) -> Result<Option<JpegInfo>, String> {
    if !head.starts_with(&[0xFF, 0xD8]) {
        return Err("no JPEG start-of-image marker".into());
    }
    let mut i = 2;
    loop {
        if i + 4 > head.len() {
            return Ok(None);
        }
        if head[i] != 0xFF {
            return Err(format!(
                "no JPEG marker at byte {i} (found 0x{:02X})",
                head[i]
            ));
        }
        let marker = head[i + 1];
        match marker {
            0xFF => i += 1,
            0x01 | 0xD0..=0xD7 => i += 2,
            0xD9 | 0xDA => return Err("image data before any frame header".into()),
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let Some(sof) = head.get(i + 4..i + 10) else {
                    return Ok(None);
                };
                let height = u16::from_be_bytes([sof[1], sof[2]]);
                let width = u16::from_be_bytes([sof[3], sof[4]]);
                let components = sof[5];
                if width == 0 || height == 0 || !matches!(components, 1 | 3 | 4) {
                    return Err(format!(
                        "implausible frame header: {width}×{height}, {components} components"
                    ));
                }
                return Ok(Some(JpegInfo {
                    width,
                    height,
                    components,
                }));
            }
            _ => {
                let len = usize::from(u16::from_be_bytes([head[i + 2], head[i + 3]]));
                if len < 2 {
                    return Err(format!("bad JPEG segment length {len} at byte {i}"));
                }
                i += 2 + len;
            }
        }
    }
}

#[derive(Default)]
struct Pending {
    /// First header of the member being assembled (PAX / LongLink blocks included).
    start: Option<u64>,
    long_name: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_size: Option<u64>,
}

struct Walk {
    index: ShardIndex,
    current: Option<SampleRecord>,
    buf: Vec<u8>,
}

impl Walk {
    fn finish_sample(&mut self) {
        if let Some(s) = self.current.take() {
            self.index.samples.push(s);
        }
    }

    fn stop(&mut self, kind: ProblemKind, offset: u64, member: String, detail: String) {
        // The sample being read when the walk broke off is marked: some of its members
        // may never have been seen.
        let damaged_key = split_name(&member).map(|(k, _)| k.to_owned());
        if let Some(cur) = &mut self.current
            && damaged_key.as_deref().is_none_or(|k| k == cur.key)
        {
            cur.flags |= flags::DAMAGED;
        }
        self.index.structural = Some(StructuralError {
            kind,
            offset,
            member,
            detail,
        });
    }
}

/// Index one shard. `cancelled` is polled between members.
pub fn index_shard(path: &Path, cancelled: &dyn Fn() -> bool) -> Result<ShardIndex, IndexError> {
    let io = |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let len = meta.len();
    let mut cur = Cursor {
        r: BufReader::with_capacity(64 << 10, file),
        pos: 0,
    };
    let mut walk = Walk {
        index: ShardIndex {
            path: path.to_path_buf(),
            len,
            mtime_ns: mtime_ns(&meta),
            ..Default::default()
        },
        current: None,
        buf: Vec::new(),
    };
    let mut pos = 0u64;
    let mut pending = Pending::default();
    let mut block = [0u8; 512];
    loop {
        if cancelled() {
            return Err(IndexError::Cancelled);
        }
        let pending_name = || {
            pending
                .pax_path
                .as_deref()
                .or(pending.long_name.as_deref())
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_default()
        };
        if pos + 512 > len {
            if pos < len || pending.start.is_some() {
                let name = pending_name();
                walk.stop(
                    ProblemKind::UnexpectedEof,
                    len,
                    name,
                    format!(
                        "header block at offset {pos} cut short: {} of 512 bytes present",
                        len.saturating_sub(pos)
                    ),
                );
            }
            // At (or inside the zero padding just before) the end with nothing pending:
            // every member is whole, only the end blocks are missing.
            break;
        }
        if let Err(err) = cur.read_at(pos, &mut block) {
            walk.stop(
                ProblemKind::UnexpectedEof,
                pos,
                pending_name(),
                format!("read failed: {err}"),
            );
            break;
        }
        if block.iter().all(|&b| b == 0) {
            walk.index.end_of_archive = Some(pos);
            break;
        }
        let header = tar::Header::from_byte_slice(&block);
        let computed = header_checksum(&block);
        if header.cksum().ok() != Some(computed) {
            let name = name_behind_bad_header(&mut cur, &block, header, pos, len)
                .unwrap_or_else(pending_name);
            walk.stop(
                ProblemKind::BadHeaderChecksum,
                pos,
                name,
                format!(
                    "stored '{}', computed {computed:06o}",
                    trim_field(&block[148..156])
                ),
            );
            break;
        }
        let entry_type = header.entry_type();
        let declared = match header.entry_size() {
            Ok(size) => size,
            Err(err) => {
                walk.stop(
                    ProblemKind::BadHeader,
                    pos,
                    pending_name(),
                    format!("unreadable size field: {err}"),
                );
                break;
            }
        };
        let data = pos + 512;
        let is_extension = matches!(
            entry_type,
            tar::EntryType::XHeader
                | tar::EntryType::XGlobalHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        );
        if is_extension {
            // Sizes come from the file: compare without adding, so a lying 64-bit size
            // cannot overflow.
            let past_eof = declared > len.saturating_sub(data);
            if declared > MAX_EXTENSION || past_eof {
                let kind = if past_eof {
                    ProblemKind::UnexpectedEof
                } else {
                    ProblemKind::BadHeader
                };
                walk.stop(
                    kind,
                    pos,
                    pending_name(),
                    format!("extension header declares {declared} bytes at offset {data}"),
                );
                break;
            }
            if let Err(err) = cur.read_vec(data, declared, &mut walk.buf) {
                walk.stop(
                    ProblemKind::UnexpectedEof,
                    pos,
                    pending_name(),
                    err.to_string(),
                );
                break;
            }
            match entry_type {
                tar::EntryType::XHeader => {
                    pending.start.get_or_insert(pos);
                    for ext in tar::PaxExtensions::new(&walk.buf).flatten() {
                        match ext.key() {
                            Ok("path") => pending.pax_path = Some(ext.value_bytes().to_vec()),
                            Ok("size") => {
                                pending.pax_size =
                                    ext.value().ok().and_then(|v| v.trim().parse().ok());
                            }
                            _ => {}
                        }
                    }
                }
                tar::EntryType::GNULongName => {
                    pending.start.get_or_insert(pos);
                    pending.long_name = Some(until_nul(&walk.buf).to_vec());
                }
                tar::EntryType::GNULongLink => {
                    pending.start.get_or_insert(pos);
                }
                // A global header applies to the whole archive; nothing here uses it.
                _ => {}
            }
            pos = data + declared.div_ceil(512) * 512;
            continue;
        }

        // A real member: its name and size come from the extensions before it, if any.
        let name_bytes = pending
            .pax_path
            .take()
            .or(pending.long_name.take())
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let size = pending.pax_size.take().unwrap_or(declared);
        let header_offset = pending.start.take().unwrap_or(pos);
        let name = String::from_utf8_lossy(&name_bytes).into_owned();
        let complete = size <= len.saturating_sub(data);
        let regular = matches!(
            entry_type,
            tar::EntryType::Regular | tar::EntryType::Continuous
        );
        let split = if regular { split_name(&name) } else { None };
        match split {
            None => walk.index.ignored_members += 1,
            Some((key, ext)) => {
                let same_sample = walk
                    .current
                    .as_ref()
                    .is_some_and(|s| s.key == key && s.members[ext.index()].is_none());
                if !same_sample {
                    walk.finish_sample();
                    walk.current = Some(SampleRecord {
                        key: key.to_owned(),
                        ..Default::default()
                    });
                }
                if let Some(sample) = &mut walk.current {
                    sample.members[ext.index()] = Some(MemberRef {
                        header_offset,
                        offset: data,
                        size,
                        complete,
                    });
                }
                if complete {
                    read_member(&mut cur, &mut walk, ext, data, size);
                }
            }
        }
        if !complete {
            let present = len.saturating_sub(data);
            // A partial download ends anywhere; a tar writer always writes whole blocks.
            // So a whole-block file whose header claims more is a lying header.
            if len % 512 != 0 {
                walk.stop(
                    ProblemKind::UnexpectedEof,
                    len,
                    name,
                    format!(
                        "member declares {size} bytes at offset {data}, only {present} present"
                    ),
                );
            } else {
                walk.stop(
                    ProblemKind::MemberPastEof,
                    pos,
                    name,
                    format!("data at {data} + {size} > file length {len}"),
                );
            }
            break;
        }
        pos = data + size.div_ceil(512) * 512;
    }
    walk.finish_sample();
    let mut index = walk.index;
    for sample in &mut index.samples {
        if sample.flags & flags::DAMAGED != 0 {
            continue;
        }
        for ext in Ext::ALL {
            if sample.members[ext.index()].is_none() {
                sample.flags |= flags::MISSING_MEMBER;
                index.problems.push(Problem {
                    key: sample.key.clone(),
                    member: Some(ext),
                    kind: ProblemKind::MissingMember,
                    detail: format!("the sample has no .{} member", ext.as_str()),
                });
            }
        }
    }
    // Content problems in shard order, then missing members.
    index
        .problems
        .sort_by_key(|p| p.kind == ProblemKind::MissingMember);
    Ok(index)
}

/// The name of the member a bad header belongs to, for the report: a PAX or LongLink
/// header carries no useful name itself, so peek at the header after its payload.
fn name_behind_bad_header(
    cur: &mut Cursor,
    block: &[u8; 512],
    header: &tar::Header,
    pos: u64,
    len: u64,
) -> Option<String> {
    let own = || {
        let n = header.path_bytes();
        (!n.is_empty()).then(|| String::from_utf8_lossy(&n).into_owned())
    };
    if !matches!(block[156], b'x' | b'L') {
        return own();
    }
    let size = header.entry_size().ok()?;
    if size > MAX_EXTENSION {
        return own();
    }
    let next = pos + 512 + size.div_ceil(512) * 512;
    if next + 512 > len {
        return own();
    }
    if block[156] == b'L' {
        let mut buf = Vec::new();
        cur.read_vec(pos + 512, size, &mut buf).ok()?;
        return Some(String::from_utf8_lossy(until_nul(&buf)).into_owned());
    }
    let mut buf = Vec::new();
    cur.read_vec(pos + 512, size, &mut buf).ok()?;
    if let Some(path) = tar::PaxExtensions::new(&buf)
        .flatten()
        .find(|e| e.key().ok() == Some("path"))
    {
        return Some(String::from_utf8_lossy(path.value_bytes()).into_owned());
    }
    let mut next_block = [0u8; 512];
    cur.read_at(next, &mut next_block).ok()?;
    let name = tar::Header::from_byte_slice(&next_block).path_bytes();
    Some(String::from_utf8_lossy(&name).into_owned())
}

fn read_member(cur: &mut Cursor, walk: &mut Walk, ext: Ext, data: u64, size: u64) {
    let Some(sample) = walk.current.as_mut() else {
        return;
    };
    let mut problem = |kind, detail: String| {
        walk.index.problems.push(Problem {
            key: sample.key.clone(),
            member: Some(ext),
            kind,
            detail,
        });
    };
    let limit = match ext {
        Ext::Jpg => size.min(JPEG_HEAD),
        Ext::Json => size.min(JSON_HEAD),
        Ext::Txt => size,
    };
    if limit > MAX_TEXT_MEMBER {
        let flag = if ext == Ext::Json {
            flags::BAD_JSON
        } else {
            flags::INVALID_UTF8
        };
        sample.flags |= flag;
        problem(
            ProblemKind::BadHeader,
            format!("{size} bytes is too large to read as text"),
        );
        return;
    }
    if let Err(err) = cur.read_vec(data, limit, &mut walk.buf) {
        problem(ProblemKind::UnexpectedEof, format!("read failed: {err}"));
        return;
    }
    let bytes = &walk.buf;
    match ext {
        Ext::Txt => match std::str::from_utf8(bytes) {
            Ok(s) => sample.caption = s.to_owned(),
            Err(err) => {
                sample.flags |= flags::INVALID_UTF8;
                sample.caption = String::from_utf8_lossy(bytes).into_owned();
                problem(
                    ProblemKind::InvalidUtf8,
                    format!("caption is not UTF-8 from byte {}", err.valid_up_to()),
                );
            }
        },
        Ext::Json => {
            let parsed = match meta::try_parse_index_fields(bytes) {
                Some(fields) => Ok(fields),
                None if limit == size => meta::parse_index_fields(bytes),
                None if size > MAX_TEXT_MEMBER => {
                    Err(format!("{size} bytes is too large to read as JSON"))
                }
                None => match cur.read_vec(data, size, &mut walk.buf) {
                    Ok(()) => meta::parse_index_fields(&walk.buf),
                    Err(err) => Err(format!("read failed: {err}")),
                },
            };
            match parsed {
                Ok(fields) => sample.fields = Some(fields),
                Err(err) => {
                    sample.flags |= flags::BAD_JSON;
                    walk.index.problems.push(Problem {
                        key: sample.key.clone(),
                        member: Some(ext),
                        kind: ProblemKind::BadJson,
                        detail: err,
                    });
                }
            }
        }
        Ext::Jpg => match jpeg_info(bytes) {
            Ok(info) => sample.jpeg = info,
            Err(err) => {
                sample.flags |= flags::BAD_JPEG;
                problem(ProblemKind::JpegDecodeError, err);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_the_known_suffix_at_the_end() {
        assert_eq!(
            split_name("a-PMC1-2-pone.0102872.g001.jpg"),
            Some(("a-PMC1-2-pone.0102872.g001", Ext::Jpg))
        );
        assert_eq!(split_name("./k.v.json"), Some(("k.v", Ext::Json)));
        assert_eq!(split_name("k.txt"), Some(("k", Ext::Txt)));
        assert_eq!(split_name("k.png"), None);
        assert_eq!(split_name(".jpg"), None);
    }

    #[test]
    fn jpeg_frame_headers() {
        // SOI, APP0 of length 4, SOF0 8×5 with 3 components.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 17, 8, 0, 5, 0, 8, 3,
        ];
        assert_eq!(
            jpeg_info(&jpeg),
            Ok(Some(JpegInfo {
                width: 8,
                height: 5,
                components: 3
            }))
        );
        assert_eq!(jpeg_info(&jpeg[..10]), Ok(None));
        assert!(jpeg_info(b"PNG").is_err());
        assert!(jpeg_info(&[0xFF, 0xD8, 0x12, 0x34, 0, 0]).is_err());
    }
}
