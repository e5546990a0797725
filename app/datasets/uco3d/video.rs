//! Video frames by timestamp, decoded with FFmpeg's libraries (phone captures come as
//! H.264 and HEVC; only FFmpeg decodes every codec they use).
//!
//! Seek semantics follow the official loader (`cv2.VideoCapture` with
//! `CAP_PROP_POS_MSEC`): the frame returned for `t` is the first one whose presentation
//! time is at or after `t` (with a 1 ms tolerance for timestamps rounded to float), and
//! frames are turned upright from the stream's display matrix as OpenCV and the `ffmpeg`
//! CLI do by default.

use ffmpeg_next as ffmpeg;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct VideoError {
    pub path: String,
    pub message: String,
}

/// Tolerance when matching a float timestamp to a frame's presentation time.
const TIME_EPSILON: f64 = 1e-3;
/// Requests up to this far ahead of the decoder decode forward instead of seeking
/// (sequential play never seeks).
const FORWARD_WINDOW: f64 = 2.0;

/// A decoded frame, upright, RGBA.
#[derive(Clone)]
pub struct Frame {
    /// Presentation time in seconds.
    pub time: f64,
    /// Shared: the reader keeps the last frame for the next request without copying it.
    pub image: std::sync::Arc<image::RgbaImage>,
}

/// One open video file.
pub struct VideoReader {
    path: String,
    input: ffmpeg::format::context::Input,
    stream: usize,
    time_base: f64,
    start: f64,
    decoder: ffmpeg::decoder::Video,
    scaler: Option<(
        ffmpeg::software::scaling::Context,
        ffmpeg::format::Pixel,
        u32,
        u32,
    )>,
    /// Clockwise quarter turns to make frames upright.
    quarter_turns: u32,
    /// Presentation time of the last frame handed out, to decide seek vs. decode on.
    last_time: Option<f64>,
    /// A decoded frame read past the last request (kept for the next one).
    pending: Option<Frame>,
    eof: bool,
    pub duration: f64,
    pub fps: f64,
    pub codec: String,
}

impl VideoReader {
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let name = path.display().to_string();
        let err = |message: String| VideoError {
            path: name.clone(),
            message,
        };
        ffmpeg::init().map_err(|e| err(format!("FFmpeg failed to start: {e}")))?;
        if !path.is_file() {
            return Err(err("the file does not exist".into()));
        }
        let input =
            ffmpeg::format::input(path).map_err(|e| err(format!("not a readable video: {e}")))?;
        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or_else(|| err("no video stream".into()))?;
        let index = stream.index();
        let tb = stream.time_base();
        let time_base = f64::from(tb.numerator()) / f64::from(tb.denominator().max(1));
        let start = if stream.start_time() == ffmpeg::ffi::AV_NOPTS_VALUE {
            0.0
        } else {
            stream.start_time() as f64 * time_base
        };
        let duration = if stream.duration() > 0 {
            stream.duration() as f64 * time_base
        } else {
            input.duration().max(0) as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
        };
        let rate = stream.avg_frame_rate();
        let fps = if rate.denominator() != 0 {
            f64::from(rate.numerator()) / f64::from(rate.denominator())
        } else {
            0.0
        };
        let quarter_turns = stream
            .side_data()
            .find(|sd| sd.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix)
            .map(|sd| quarter_turns(sd.data()))
            .unwrap_or(0);
        let mut ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| err(format!("unsupported codec parameters: {e}")))?;
        // Frame threads, as many as FFmpeg picks (count 0); the `safe` flag only exists on
        // older FFmpeg builds, hence the struct-update syntax.
        ctx.set_threading(ffmpeg::threading::Config {
            count: 0,
            ..ffmpeg::threading::Config::kind(ffmpeg::threading::Type::Frame)
        });
        let decoder = ctx
            .decoder()
            .video()
            .map_err(|e| err(format!("no decoder for this codec: {e}")))?;
        let codec = decoder.id().name().to_owned();
        Ok(Self {
            path: name,
            input,
            stream: index,
            time_base,
            start,
            decoder,
            scaler: None,
            quarter_turns,
            last_time: None,
            pending: None,
            eof: false,
            duration,
            fps,
            codec,
        })
    }

    fn err(&self, message: String) -> VideoError {
        VideoError {
            path: self.path.clone(),
            message,
        }
    }

    /// Size of the upright frames (width, height).
    pub fn size(&self) -> (u32, u32) {
        let (w, h) = (self.decoder.width(), self.decoder.height());
        if self.quarter_turns % 2 == 1 {
            (h, w)
        } else {
            (w, h)
        }
    }

    /// The first frame at or after `t` seconds (the last frame if `t` is past the end).
    pub fn frame_at(&mut self, t: f64) -> Result<Frame, VideoError> {
        let ahead = self
            .last_time
            .is_some_and(|last| t > last - TIME_EPSILON && t - last < FORWARD_WINDOW);
        if !ahead {
            self.seek(t)?;
        }
        let mut last_seen: Option<Frame> = None;
        loop {
            let frame = match self.pending.take() {
                Some(f) => Some(f),
                None => self.decode_next()?,
            };
            match frame {
                Some(f) if f.time + TIME_EPSILON >= t => {
                    self.last_time = Some(f.time);
                    // Keep it: the next sequential request may want this very frame.
                    self.pending = Some(f.clone());
                    return Ok(f);
                }
                Some(f) => last_seen = Some(f),
                None => {
                    return last_seen
                        .inspect(|f| self.last_time = Some(f.time))
                        .ok_or_else(|| {
                            self.err(format!("no frame at or after {t:.3} s (truncated video?)"))
                        });
                }
            }
        }
    }

    fn seek(&mut self, t: f64) -> Result<(), VideoError> {
        self.pending = None;
        self.eof = false;
        self.last_time = None;
        // avformat_seek_file with stream -1 takes AV_TIME_BASE units; the range ending at
        // the target makes it land on the keyframe at or before it.
        let ts = ((t + self.start - 0.5 * TIME_EPSILON).max(0.0)
            * f64::from(ffmpeg::ffi::AV_TIME_BASE)) as i64;
        self.input
            .seek(ts, ..ts)
            .or_else(|_| self.input.seek(0, ..))
            .map_err(|e| self.err(format!("seek to {t:.3} s failed: {e}")))?;
        self.decoder.flush();
        Ok(())
    }

    /// The next decoded frame in presentation order, or `None` at the end.
    fn decode_next(&mut self) -> Result<Option<Frame>, VideoError> {
        let mut decoded = ffmpeg::frame::Video::empty();
        loop {
            if self.decoder.receive_frame(&mut decoded).is_ok() {
                return self.convert(&decoded).map(Some);
            }
            if self.eof {
                return Ok(None);
            }
            match self.input.packets().next() {
                Some((stream, packet)) => {
                    if stream.index() == self.stream {
                        // A corrupt packet is skipped as players do; the next keyframe recovers.
                        let _ = self.decoder.send_packet(&packet);
                    }
                }
                None => {
                    self.eof = true;
                    let _ = self.decoder.send_eof();
                }
            }
        }
    }

    fn convert(&mut self, frame: &ffmpeg::frame::Video) -> Result<Frame, VideoError> {
        let (w, h, fmt) = (frame.width(), frame.height(), frame.format());
        let stale =
            !matches!(&self.scaler, Some((_, f, sw, sh)) if *f == fmt && *sw == w && *sh == h);
        if stale {
            let ctx = ffmpeg::software::scaling::Context::get(
                fmt,
                w,
                h,
                ffmpeg::format::Pixel::RGBA,
                w,
                h,
                // Same size, so only the chroma upsampling uses the filter. Bit-exact
                // rounding: the same pixels on every CPU (tests and snapshots compare them).
                ffmpeg::software::scaling::Flags::BILINEAR
                    | ffmpeg::software::scaling::Flags::ACCURATE_RND
                    | ffmpeg::software::scaling::Flags::BITEXACT,
            )
            .map_err(|e| self.err(format!("colour conversion from {fmt:?}: {e}")))?;
            self.scaler = Some((ctx, fmt, w, h));
        }
        let mut rgba = ffmpeg::frame::Video::empty();
        if let Some((scaler, ..)) = self.scaler.as_mut() {
            scaler
                .run(frame, &mut rgba)
                .map_err(|e| self.err(format!("colour conversion failed: {e}")))?;
        }
        let stride = rgba.stride(0);
        let data = rgba.data(0);
        let mut image = image::RgbaImage::new(w, h);
        for (y, row) in image.chunks_exact_mut(w as usize * 4).enumerate() {
            row.copy_from_slice(&data[y * stride..y * stride + w as usize * 4]);
        }
        let image = match self.quarter_turns {
            1 => image::imageops::rotate90(&image),
            2 => image::imageops::rotate180(&image),
            3 => image::imageops::rotate270(&image),
            _ => image,
        };
        let pts = frame.timestamp().or(frame.pts()).unwrap_or(0);
        Ok(Frame {
            time: pts as f64 * self.time_base - self.start,
            image: std::sync::Arc::new(image),
        })
    }
}

/// Clockwise quarter turns that make a frame upright, from an FFmpeg display matrix
/// (nine 16.16/2.30 fixed-point int32s): the angle `av_display_rotation_get` reports,
/// negated, as the `ffmpeg` CLI's autorotation uses it.
fn quarter_turns(matrix: &[u8]) -> u32 {
    if matrix.len() < 36 {
        return 0;
    }
    let m = |i: usize| {
        f64::from(i32::from_le_bytes([
            matrix[4 * i],
            matrix[4 * i + 1],
            matrix[4 * i + 2],
            matrix[4 * i + 3],
        ]))
    };
    let (sx, sy) = (m(0).hypot(m(3)), m(1).hypot(m(4)));
    if sx == 0.0 || sy == 0.0 {
        return 0;
    }
    let rotation = -(m(1) / sy).atan2(m(0) / sx).to_degrees();
    let clockwise = (-rotation).rem_euclid(360.0);
    ((clockwise / 90.0).round() as u32) % 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(degrees_ccw: f64) -> Vec<u8> {
        // av_display_rotation_set(matrix, angle): counter-clockwise rotation by angle.
        let r = degrees_ccw.to_radians();
        let (c, s) = (r.cos(), r.sin());
        let f = |v: f64| ((v * 65536.0).round() as i32).to_le_bytes();
        [
            f(c),
            f(-s),
            [0; 4],
            f(s),
            f(c),
            [0; 4],
            [0; 4],
            [0; 4],
            (1i32 << 30).to_le_bytes(),
        ]
        .concat()
    }

    #[test]
    fn display_matrix_angles() {
        // A phone held upright records a matrix of −90° (ffmpeg shows "rotation of -90"),
        // which the CLI undoes with a clockwise transpose.
        assert_eq!(quarter_turns(&matrix(0.0)), 0);
        assert_eq!(quarter_turns(&matrix(-90.0)), 1);
        assert_eq!(quarter_turns(&matrix(180.0)), 2);
        assert_eq!(quarter_turns(&matrix(90.0)), 3);
        assert_eq!(quarter_turns(&[1, 2, 3]), 0);
    }
}
