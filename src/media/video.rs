//! Opening a video and finding the frame a time selects.
//!
//! The stages are separate so benchmarks and batch jobs can time or reuse
//! them: [`Video::open`] (probe + stream info + pixel budget), then
//! [`Video::frame_at`] (seek + decode) as often as needed, then
//! [`super::render`] and [`super::encode`].

use super::disposable::{units, Disposable};
use super::geometry::Orientation;
use super::reference_plan::ReferencePlan;
use super::source::ByteSource;
use super::{Limits, MediaError, SeekMode};
use crate::av::{
    self, AvError, Decoder, Discard, Frame, Input, OpenError, Packet, Rational, StreamInfo,
};

/// The most bytes one read hint asks for: what a seek will read next, from
/// the index, in one request (beyond, the reader's own read-ahead goes on).
const MAX_READ_HINT: u64 = 8 * 1024 * 1024;

/// An opened video stream ready to decode.
pub struct Video {
    // Field order matters for drop order: decoder, then input.
    decoder: Decoder,
    input: Input,
    stream: StreamInfo,
    /// The stream timestamp of `time = 0`.
    origin: i64,
    /// The first timestamp of the stream (or `origin`).
    first: i64,
    max_source_pixels: u64,
    /// Which packets hold pictures nothing references.
    disposable: Disposable,
    /// Packets of such pictures kept from the decoder so far.
    dropped: u64,
    /// Which reference pictures an exact run may cut (H.264 without error
    /// concealment).
    plan: Option<ReferencePlan>,
    /// Whether packets were read since the last seek or since opening.
    touched: bool,
    /// Whether an exact decode stays where it stopped.
    exact_runs: ExactRuns,
    /// Where the last exact decode stopped, when a later time can continue
    /// from there.
    position: Option<Position>,
}

/// What an exact decode leaves behind for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExactRuns {
    /// Every exact decode starts again from a keyframe (one-off snapshots,
    /// batch passes, which ask for all their times at once).
    #[default]
    FromKeyframe,
    /// An exact decode leaves the decoder, with its reference pictures, at
    /// the position it reached, and a later time in the same group of
    /// pictures continues from there (scrubbing). To make that possible a
    /// decode decodes every picture shown after its last target in full
    /// until the next one has come out, and never drains the decoder
    /// unless the data ends.
    Resumable,
}

/// Where a resumable exact decode stopped: everything the next run of the
/// same forward pass needs, so that continuing gives the pictures a fresh
/// decode from the keyframe would.
///
/// The invariant that makes a continuation byte-identical: every packet read
/// since the keyframe went to the decoder, or waits in the reference plan,
/// or was a picture nothing references shown at or before `shown_ts`; a
/// reference picture was cut only once it could no longer be referred to;
/// and every picture shown after `shown_ts` that was read was (or will be)
/// decoded in full.
struct Position {
    /// The keyframe the decode started from (`key_ts` as the pick counts
    /// it: its presentation time, else its decode time) and its decode
    /// time.
    key_ts: Option<i64>,
    key_dts: Option<i64>,
    /// The latest keyframe read after that one.
    later_key: Option<i64>,
    /// The frame on screen at the last target, and its timestamp.
    shown: Frame,
    shown_ts: i64,
    /// The frame after it, which ended the decode.
    next: Frame,
    next_ts: i64,
    /// Timestamps of the packets read last (see `run_exact_planned`).
    recent: std::collections::VecDeque<i64>,
    /// Whether every packet read had a presentation timestamp.
    all_pts: bool,
    /// The largest decode timestamp read.
    read_dts: i64,
    /// The timestamp of the last frame out of the decoder.
    last_ts: Option<i64>,
    /// The decode started at the beginning of the media.
    from_start: bool,
}

impl Position {
    /// Whether a decode for `target` (stream time), whose indexed keyframe
    /// is `keyframe`, gets its picture by continuing from here: the target
    /// is not before what is on screen, and in the group of pictures the
    /// decode started in (the one a fresh decode would start from: after an
    /// open GOP's keyframe, pictures that refer across it decode
    /// differently from a fresh start). Without an index: no later keyframe
    /// was read at or before the target, and the target is no further than
    /// `seek_gap` ahead.
    fn continues_to(&self, target: i64, keyframe: Option<i64>, seek_gap: i64) -> bool {
        target >= self.shown_ts
            && match keyframe {
                Some(key) => Some(key) == self.key_ts || Some(key) == self.key_dts,
                None => {
                    self.later_key.is_none_or(|k| target < k)
                        && target.saturating_sub(self.read_dts) <= seek_gap
                }
            }
    }
}

/// How an exact run begins.
enum RunStart {
    /// Right after a seek (or at the start): from the next keyframe.
    Seeked,
    /// From where the last resumable run stopped.
    Resumed(Position),
}

/// A decoder taken from a [`Video`] by [`Video::into_parts`]; closed when
/// dropped.
pub struct ClosingDecoder {
    _decoder: Decoder,
}

/// Where a frame sits on the timeline, from its packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameTime {
    /// Presentation time relative to the media start, in seconds.
    pub seconds: f64,
    /// Whether the frame is a keyframe (a random access point).
    pub keyframe: bool,
}

/// A decoded frame and where it sits on the timeline.
pub struct DecodedFrame {
    frame: Frame,
    /// Presentation time relative to the media start, in seconds.
    pub pts_seconds: f64,
    /// Display orientation from the container's display matrix.
    pub orientation: Orientation,
    /// Sample aspect ratio (frame's, else the stream's).
    pub sample_aspect_ratio: Rational,
}

impl DecodedFrame {
    /// Coded width and height of the picture.
    pub fn coded_size(&self) -> (u32, u32) {
        (self.frame.width(), self.frame.height())
    }

    pub(crate) fn frame(&self) -> &Frame {
        &self.frame
    }
}

/// The outcome of one decoding attempt from one seek point.
enum Attempt {
    Found(Frame, i64),
    /// The keyframe reached is after the target: start earlier. Carries the
    /// timestamp that was too late.
    TooLate(i64),
}

/// Opens an input, mapping open failures and stream info errors.
pub(crate) fn open_input(
    source: Box<dyn ByteSource>,
    limits: &Limits,
) -> Result<Input, MediaError> {
    let interrupt = av::Interrupt::new(limits.deadline, limits.cancel.clone());
    let mut input = Input::open(source, interrupt.clone()).map_err(|e| match e {
        OpenError::NotMedia => MediaError::NotMedia,
        OpenError::BadHeader(_) => MediaError::Corrupt,
        OpenError::Io(e) => MediaError::Io(e),
        OpenError::Interrupted => interrupted(&interrupt),
        OpenError::Panicked => MediaError::internal("byte source panicked"),
        OpenError::Other(e) => MediaError::internal(e),
    })?;
    if let Err(e) = input.find_stream_info() {
        return Err(read_failure(&mut input, e).unwrap_or(MediaError::Corrupt));
    }
    Ok(input)
}

/// Timeout or Cancelled, whichever applies (cancel wins).
fn interrupted(interrupt: &av::Interrupt) -> MediaError {
    if interrupt.is_cancelled() {
        MediaError::Cancelled
    } else {
        MediaError::Timeout
    }
}

/// For a failed read: the I/O, interrupt or panic behind it, if any. `None`
/// means the data itself is bad (or ended).
fn read_failure(input: &mut Input, err: AvError) -> Option<MediaError> {
    if input.source_panicked() {
        return Some(MediaError::internal("byte source panicked"));
    }
    if let Some(io) = input.take_io_error() {
        return Some(MediaError::Io(io));
    }
    if matches!(err, AvError::Interrupted) || input.interrupt().triggered() {
        return Some(interrupted(input.interrupt()));
    }
    None
}

fn seconds_to_ts(seconds: f64, tb: Rational) -> i64 {
    let ticks = seconds * f64::from(tb.den) / f64::from(tb.num.max(1));
    // Far past any real timestamp but safe from overflow in arithmetic.
    ticks
        .round()
        .clamp(-(1i64 << 60) as f64, (1i64 << 60) as f64) as i64
}

/// An opened container without a decoder: the parsed header and index, the
/// chosen stream and the byte source with its read-ahead. What
/// [`OpenCache`](super::OpenCache) keeps between requests for one object so a
/// repeated snapshot skips probing and index parsing (the `moov` of an MP4).
pub struct OpenedVideo {
    input: Input,
    stream: StreamInfo,
    origin: i64,
    first: i64,
    max_source_pixels: u64,
}

impl OpenedVideo {
    /// Opens the source, picks the video stream and checks the pixel budget.
    /// Nothing is decoded yet.
    pub fn open(source: Box<dyn ByteSource>, limits: &Limits) -> Result<Self, MediaError> {
        let mut input = open_input(source, limits)?;
        let index = input.best_video_stream().ok_or(MediaError::NoVideoStream)?;
        let stream = input.stream(index);
        check_pixels(stream.width, stream.height, limits.max_source_pixels)?;
        input.discard_all_but(index);
        let tb = stream.time_base;
        if tb.num <= 0 || tb.den <= 0 {
            return Err(MediaError::Corrupt);
        }
        let origin = input
            .start_seconds()
            .map(|s| seconds_to_ts(s, tb))
            .or(stream.start_time)
            .unwrap_or(0);
        let first = stream.start_time.unwrap_or(origin);
        Ok(Self {
            input,
            stream,
            origin,
            first,
            max_source_pixels: limits.max_source_pixels,
        })
    }

    /// Opens a decoder (`limits.decode_threads` threads) under `limits`'
    /// deadline and cancel flag, ready to seek and decode.
    pub fn into_video(self, limits: &Limits) -> Result<Video, MediaError> {
        self.input
            .interrupt()
            .rearm(limits.deadline, limits.cancel.clone());
        let decoder = self
            .input
            .open_decoder(
                self.stream.index,
                limits.decode_threads,
                limits.conceal_errors,
            )
            .map_err(|e| match e {
                AvError::DecoderNotFound(codec) => MediaError::UnsupportedCodec { codec },
                AvError::InvalidData => MediaError::Corrupt,
                other => MediaError::internal(other),
            })?;
        let disposable = Disposable::for_stream(&self.stream.codec_name, &self.stream.extradata);
        let plan = ReferencePlan::for_stream(&self.stream.codec_name, &self.stream.extradata)
            .filter(|_| !limits.conceal_errors);
        Ok(Video {
            decoder,
            disposable,
            dropped: 0,
            plan,
            input: self.input,
            stream: self.stream,
            origin: self.origin,
            first: self.first,
            max_source_pixels: self.max_source_pixels,
            // Where the input stands is unknown: the first decode seeks.
            touched: true,
            exact_runs: ExactRuns::FromKeyframe,
            position: None,
        })
    }
}

impl Video {
    /// Opens the source, picks the video stream, checks the pixel budget and
    /// opens a decoder. Nothing is decoded yet.
    pub fn open(source: Box<dyn ByteSource>, limits: &Limits) -> Result<Self, MediaError> {
        let mut video = OpenedVideo::open(source, limits)?.into_video(limits)?;
        video.touched = false;
        Ok(video)
    }

    /// Releases the decoder (and the frames it holds), keeping the opened
    /// container for another request.
    pub fn into_opened(self) -> OpenedVideo {
        self.into_parts().0
    }

    /// Splits the video into the opened container, for another request, and
    /// its decoder, to be dropped where closing it (joining its threads,
    /// freeing its frames: milliseconds for a threaded HD decoder) delays no
    /// one. The two are independent: the decoder copied what it needed from
    /// the container when it opened.
    pub fn into_parts(self) -> (OpenedVideo, ClosingDecoder) {
        let Video {
            decoder,
            input,
            stream,
            origin,
            first,
            max_source_pixels,
            disposable: _,
            dropped: _,
            plan: _,
            touched: _,
            exact_runs: _,
            position: _,
        } = self;
        let opened = OpenedVideo {
            input,
            stream,
            origin,
            first,
            max_source_pixels,
        };
        (opened, ClosingDecoder { _decoder: decoder })
    }

    /// Sets what exact decodes leave behind (see [`ExactRuns`]).
    pub fn set_exact_runs(&mut self, exact_runs: ExactRuns) {
        self.exact_runs = exact_runs;
        if exact_runs == ExactRuns::FromKeyframe {
            self.position = None;
        }
    }

    /// Whether an exact decode of `time` would continue from where the last
    /// one stopped instead of seeking: the time is not before the frame
    /// then on screen, and in the same group of pictures (or, without an
    /// index, close enough ahead).
    pub fn continues_to(&self, time: f64) -> bool {
        let Some(position) = &self.position else {
            return false;
        };
        if !time.is_finite() || time < 0.0 {
            return false;
        }
        let target = self
            .origin
            .saturating_add(seconds_to_ts(time, self.stream.time_base));
        position.continues_to(target, self.indexed_keyframe(target), self.seek_gap())
    }

    /// The time (seconds from the start) of the frame on screen where the
    /// last exact decode stopped, if a later one can continue from there.
    pub fn position_seconds(&self) -> Option<f64> {
        let tb = self.stream.time_base;
        self.position
            .as_ref()
            .map(|p| (p.shown_ts - self.origin) as f64 * f64::from(tb.num) / f64::from(tb.den))
    }

    /// An estimate of the memory a decoder of this stream holds between
    /// requests: the largest picture buffer the codecs here allow (16
    /// pictures), one picture per frame thread, and the two frames a
    /// position keeps, each the size its pixel format gives (4:2:0, 4:2:2 or
    /// 4:4:4, 8 bits or more per sample).
    pub fn resident_bytes(&self, decode_threads: u32) -> u64 {
        let pixels = u64::from(self.stream.width) * u64::from(self.stream.height);
        let format = &self.stream.details.sample_format;
        // Samples per pixel, in halves.
        let halves: u64 = if format.contains("444") || format.starts_with("gbr") {
            6
        } else if format.contains("422") {
            4
        } else {
            3
        };
        let sample_bytes: u64 = if ["p9", "p10", "p12", "p14", "p16"]
            .iter()
            .any(|depth| format.contains(depth))
        {
            2
        } else {
            1
        };
        let pictures = 16 + u64::from(decode_threads) + 2;
        pixels * halves * sample_bytes / 2 * pictures
    }

    /// Gives the video the next request's deadline and cancel flag.
    pub fn rearm(&self, limits: &Limits) {
        self.input
            .interrupt()
            .rearm(limits.deadline, limits.cancel.clone());
    }

    /// How many reference pictures the exact decodes so far sent only as
    /// slice headers, because nothing wanted refers to them (H.264 and HEVC
    /// without error concealment; see [`super::Limits::conceal_errors`]).
    pub fn pictures_cut(&self) -> u64 {
        self.plan.as_ref().map_or(0, ReferencePlan::cut)
    }

    /// How many packets the exact decodes so far kept from the decoder
    /// because they hold a picture nothing references and another picture
    /// is shown at the target (see `disposable`).
    pub fn pictures_dropped(&self) -> u64 {
        self.dropped
    }

    /// What the container says about the chosen video stream.
    pub fn stream(&self) -> &StreamInfo {
        &self.stream
    }

    /// The orientation the display matrix asks for.
    pub fn orientation(&self) -> Orientation {
        self.stream
            .display_matrix
            .as_ref()
            .map_or(Orientation::IDENTITY, Orientation::from_display_matrix)
    }

    /// Decodes the frame `time` seconds from the start selects:
    ///
    /// - [`SeekMode::Keyframe`]: the last keyframe (container random access
    ///   point) whose presentation time is at or before `time`;
    /// - [`SeekMode::ExactFrame`]: the last frame whose presentation time is
    ///   at or before `time`, i.e. the frame on screen at `time`.
    ///
    /// A `time` before the first frame selects the first frame; a `time`
    /// past the end selects the last frame (last keyframe).
    pub fn frame_at(&mut self, time: f64, mode: SeekMode) -> Result<DecodedFrame, MediaError> {
        if !time.is_finite() || time < 0.0 {
            return Err(MediaError::InvalidParameter { name: "time" });
        }
        if mode == SeekMode::ExactFrame {
            let mut found = None;
            self.frames_at(&[time], &mut |_, frame| {
                found = Some(DecodedFrame {
                    frame: frame.frame.try_clone().map_err(MediaError::internal)?,
                    ..*frame
                });
                Ok(())
            })?;
            return found.ok_or(MediaError::Corrupt);
        }
        let tb = self.stream.time_base;
        let target = self.origin.saturating_add(seconds_to_ts(time, tb));
        let mut seek_ts = target;
        let mut step = seconds_to_ts(1.0, tb).max(1);
        loop {
            let from_start = seek_ts <= self.first;
            self.seek(seek_ts, from_start)?;
            // The keyframe packet alone.
            self.hint_reads(seek_ts, i64::MIN);
            match self.keyframe_attempt(target, from_start)? {
                Attempt::Found(frame, ts) => {
                    let sar = match frame.sample_aspect_ratio() {
                        r if r.to_f64().is_some() => r,
                        _ => self.stream.sample_aspect_ratio,
                    };
                    return Ok(DecodedFrame {
                        pts_seconds: (ts - self.origin) as f64 * f64::from(tb.num)
                            / f64::from(tb.den),
                        orientation: self.orientation(),
                        sample_aspect_ratio: sar,
                        frame,
                    });
                }
                Attempt::TooLate(ts) if !from_start => {
                    seek_ts = seek_ts.min(ts).saturating_sub(step);
                    step = step.saturating_mul(4);
                }
                Attempt::TooLate(_) => return Err(MediaError::Corrupt),
            }
        }
    }

    /// The presentation time (seconds from the start) of every frame of
    /// the video stream, ascending, and whether it is a keyframe: from the
    /// packets alone, nothing is decoded, but the whole stream is read.
    pub fn frame_times(&mut self) -> Result<Vec<FrameTime>, MediaError> {
        self.seek(self.first, true)?;
        let tb = self.stream.time_base;
        let mut packet = Packet::new().map_err(MediaError::internal)?;
        let mut times = Vec::new();
        while self.next_packet(&mut packet)? {
            let Some(ts) = packet.pts().or_else(|| packet.dts()) else {
                continue;
            };
            times.push(FrameTime {
                seconds: (ts - self.origin) as f64 * f64::from(tb.num) / f64::from(tb.den),
                keyframe: packet.is_key(),
            });
        }
        times.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        Ok(times)
    }

    /// Decodes the frame on screen at each of `times` (seconds from the
    /// start, ascending), as [`Video::frame_at`] in exact mode would, in one
    /// forward pass: frames between targets in the same group of pictures
    /// are decoded once for all of them, and the pass seeks ahead only when
    /// the next target's keyframe lies beyond what has been read (known from
    /// the container's index, else guessed from the distance). `each` gets
    /// the position in `times` and the frame; equal times get the same frame.
    pub fn frames_at(
        &mut self,
        times: &[f64],
        each: &mut dyn FnMut(usize, &DecodedFrame) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        if times.iter().any(|t| !t.is_finite() || *t < 0.0) {
            return Err(MediaError::InvalidParameter { name: "time" });
        }
        if times.windows(2).any(|w| w[0] > w[1]) {
            return Err(MediaError::internal("frames_at needs ascending times"));
        }
        let tb = self.stream.time_base;
        let targets: Vec<i64> = times
            .iter()
            .map(|&t| self.origin.saturating_add(seconds_to_ts(t, tb)))
            .collect();
        let keyframes: Vec<Option<i64>> =
            targets.iter().map(|&t| self.indexed_keyframe(t)).collect();
        let seek_gap = self.seek_gap();
        let mut done = 0;
        while done < targets.len() {
            let resumed = self
                .position
                .take()
                .filter(|p| p.continues_to(targets[done], keyframes[done], seek_gap));
            if let Some(position) = resumed {
                let run = Run {
                    targets: &targets[done..],
                    keyframes: &keyframes[done..],
                    first_index: done,
                    from_start: position.from_start,
                };
                if let RunEnd::Served(n) =
                    self.run_exact(&run, each, RunStart::Resumed(position))?
                {
                    done += n;
                    continue;
                }
            }
            let mut seek_ts = targets[done];
            let mut step = seconds_to_ts(1.0, tb).max(1);
            loop {
                let from_start = seek_ts <= self.first;
                self.seek(seek_ts, from_start)?;
                // Up to the first target, and the few packets decoded
                // after it before its frame comes out.
                let margin = seconds_to_ts(0.25, tb);
                self.hint_reads(seek_ts, targets[done].saturating_add(margin));
                let run = Run {
                    targets: &targets[done..],
                    keyframes: &keyframes[done..],
                    first_index: done,
                    from_start,
                };
                match self.run_exact(&run, each, RunStart::Seeked)? {
                    RunEnd::Served(n) => {
                        done += n;
                        break;
                    }
                    RunEnd::TooLate(ts) if !from_start => {
                        seek_ts = seek_ts.min(ts).saturating_sub(step);
                        step = step.saturating_mul(4);
                    }
                    RunEnd::TooLate(_) => return Err(MediaError::Corrupt),
                }
            }
        }
        Ok(())
    }

    /// Decodes forward from a seek for `run.targets`, handing each target's
    /// frame to `each`, until every target is served, the data ends, or the
    /// next target is better reached by seeking.
    fn run_exact(
        &mut self,
        run: &Run<'_>,
        each: &mut dyn FnMut(usize, &DecodedFrame) -> Result<(), MediaError>,
        start: RunStart,
    ) -> Result<RunEnd, MediaError> {
        let mut plan = self.plan.take();
        if let (Some(plan), RunStart::Seeked) = (plan.as_mut(), &start) {
            // A resumed run keeps what waits in the plan: those packets
            // were read and are the decoder's next.
            plan.restart();
        }
        let result = self.run_exact_planned(run, each, &mut plan, start);
        self.plan = plan;
        result
    }

    /// The container's indexed keyframe at or before `target`, when seeks
    /// go through a real index (not entries a demuxer noted while scanning).
    fn indexed_keyframe(&self, target: i64) -> Option<i64> {
        self.input
            .seeks_by_index()
            .then(|| {
                self.input
                    .indexed_keyframe_before(self.stream.index, target)
            })
            .flatten()
    }

    /// Tells the byte source, when the container's index knows, which bytes
    /// the decode after a seek to `from` reads up to the packet at `until`
    /// (at most [`MAX_READ_HINT`] of them), so that a remote store serves
    /// them in one request.
    fn hint_reads(&mut self, from: i64, until: i64) {
        if !self.input.seeks_by_index() {
            return;
        }
        if let Some(range) = self.input.indexed_bytes(self.stream.index, from, until) {
            let end = range.end.min(range.start.saturating_add(MAX_READ_HINT));
            self.input.will_read(range.start..end);
        }
    }

    /// Without an index, a forward pass seeks ahead when the next target
    /// is further than this from what has been read.
    fn seek_gap(&self) -> i64 {
        seconds_to_ts(4.0, self.stream.time_base).max(1)
    }

    /// [`Video::run_exact`], sending packets through `plan` when there is
    /// one.
    fn run_exact_planned(
        &mut self,
        run: &Run<'_>,
        each: &mut dyn FnMut(usize, &DecodedFrame) -> Result<(), MediaError>,
        plan: &mut Option<ReferencePlan>,
        start: RunStart,
    ) -> Result<RunEnd, MediaError> {
        let tb = self.stream.time_base;
        let mut packet = Packet::new().map_err(MediaError::internal)?;
        let mut frame = Frame::new().map_err(MediaError::internal)?;
        let last_target = *run.targets.last().expect("at least one target");
        let resumable = self.exact_runs == ExactRuns::Resumable;
        let mut pick = MultiPick {
            run,
            served: 0,
            key_ts: None,
            step: self.frame_step(),
            last_ts: None,
            best: Frame::new().map_err(MediaError::internal)?,
            best_ts: None,
            read_dts: i64::MIN,
            seek_gap: self.seek_gap(),
            next: Frame::new().map_err(MediaError::internal)?,
            next_ts: None,
            error: None,
            origin: self.origin,
            tb,
            orientation: self.orientation(),
            sar: self.stream.sample_aspect_ratio,
            stop: false,
        };
        let mut recent: std::collections::VecDeque<i64> = std::collections::VecDeque::new();
        let mut all_pts = true;
        let mut sent_any = false;
        let (mut key_dts, mut later_key) = (None, None);
        // Whether the run may stop reading once the data passes the last
        // target and drain the decoder (see `drain_gives_everything`); a
        // resumable run never drains before the data ends.
        let mut may_drain = false;
        if let RunStart::Resumed(position) = start {
            pick.key_ts = position.key_ts;
            key_dts = position.key_dts;
            later_key = position.later_key;
            pick.read_dts = position.read_dts;
            pick.last_ts = position.last_ts;
            pick.best = position.shown;
            pick.best_ts = Some(position.shown_ts);
            recent = position.recent;
            all_pts = position.all_pts;
            sent_any = true;
            let mut next = position.next;
            pick.offer(&mut next, Some(position.next_ts), each);
        }
        // A packet shown after every target, held until the next packet
        // tells whether anything wanted may refer to it.
        let mut held: Option<Packet> = None;
        // A picture nothing references, shown at or before a target, held
        // until the next packet tells whether it is on screen there: with
        // its presentation time and that target's.
        let mut unsure: Option<(Packet, i64, i64)> = None;
        // Whether a packet was read that is neither decoded nor waiting
        // nor dropped by the rules above (a stop came while the one before
        // it was sent): the run then leaves no position to continue from.
        let mut lost = false;
        while !pick.stop && self.next_packet(&mut packet)? {
            let pts = packet.pts();
            if !sent_any {
                if !packet.is_key() {
                    continue;
                }
                let ts = packet.pts().or(packet.dts());
                if ts.is_some_and(|ts| ts > run.targets[0]) && !run.from_start {
                    return Ok(RunEnd::TooLate(ts.unwrap_or(run.targets[0])));
                }
                pick.key_ts = ts;
                key_dts = packet.dts();
                may_drain = !resumable && self.drain_gives_everything(&packet);
            } else if packet.is_key() {
                later_key = later_key.max(packet.pts().or(packet.dts()));
            }
            all_pts &= pts.is_some();
            if let Some(dts) = packet.dts() {
                pick.read_dts = pick.read_dts.max(dts);
            }
            if let Some((earlier, p, t)) = unsure.take() {
                // Replaced on screen by a picture shown after it, at or
                // before the target: never decoded.
                if pts.is_some_and(|q| q > p && q <= t) {
                    self.dropped += 1;
                } else if self.feed_planned(
                    plan,
                    earlier,
                    Discard::Nothing,
                    &mut frame,
                    &mut pick,
                    each,
                )? {
                    lost = true;
                    break;
                }
            }
            if may_drain && sent_any && all_pts && packet.dts().is_some_and(|d| d > last_target) {
                // Nothing from here on is shown at or before a target, so
                // nothing wanted refers to a held packet: it is never decoded.
                break;
            }
            if let Some(earlier) = held.take() {
                if self.feed_planned(
                    plan,
                    earlier,
                    Discard::NonReference,
                    &mut frame,
                    &mut pick,
                    each,
                )? {
                    break;
                }
            }
            // A frame is not needed when a later-read frame is also at or
            // before the first target at or after it (B-frames come after
            // the reference they are shown before), or when it is past the
            // last target and the first frame is not what is wanted.
            let wanted = pts.and_then(|p| {
                run.targets[pick.served.min(run.targets.len() - 1)..]
                    .iter()
                    .find(|&&t| t >= p)
                    .copied()
            });
            let skippable = pts.is_some_and(|p| {
                match wanted {
                    Some(t) => recent.iter().any(|&q| q > p && q <= t),
                    // A resumable run decodes in full what is shown after
                    // its targets: a later run may want it.
                    None => !resumable && (pick.best_ts.is_some() || !run.from_start),
                }
            });
            let skippable = skippable && sent_any && all_pts;
            if let Some(p) = pts {
                if recent.len() == 32 {
                    recent.pop_front();
                }
                recent.push_back(p);
            }
            // A picture nothing references never reaches the decoder (see
            // `disposable`); for codecs without such a rule the decoder
            // skips what it can tell is unreferenced.
            let disposable = sent_any && all_pts && self.disposable.is_disposable(packet.data());
            if skippable && disposable {
                self.dropped += 1;
                continue;
            }
            // Shown at or before a target but read before the pictures shown
            // after it (no reordering, as in AV1): the next packet tells
            // whether it is the one on screen.
            if let (true, Some(p), Some(t)) = (disposable, pts, wanted) {
                let next = Packet::new().map_err(MediaError::internal)?;
                unsure = Some((std::mem::replace(&mut packet, next), p, t));
                continue;
            }
            // Past every target, a reference picture matters only if a later
            // packet read before the data passes the last target refers to
            // it (a B-frame shown before it); the next packet tells.
            if skippable && pts.is_some_and(|p| p > last_target) {
                let next = Packet::new().map_err(MediaError::internal)?;
                held = Some(std::mem::replace(&mut packet, next));
                continue;
            }
            let discard = if skippable {
                Discard::NonReference
            } else {
                Discard::Nothing
            };
            let next = Packet::new().map_err(MediaError::internal)?;
            let stopped = self.feed_planned(
                plan,
                std::mem::replace(&mut packet, next),
                discard,
                &mut frame,
                &mut pick,
                each,
            )?;
            sent_any = true;
            if stopped {
                break;
            }
        }
        if let Some((earlier, _, _)) = unsure.take().filter(|_| !pick.stop) {
            // The data ended right after it: it is on screen at its target.
            self.feed_planned(plan, earlier, Discard::Nothing, &mut frame, &mut pick, each)?;
        }
        if let Some(plan) = plan.as_mut().filter(|_| !pick.stop) {
            // Nothing more is read: what waits is decided and sent. (After
            // a stop, what waits stays for a resumed run; a seek clears it.)
            plan.finish();
            self.feed_released(plan, &mut frame, &mut pick, each)?;
        }
        if let Some(err) = pick.error.take() {
            return Err(err);
        }
        if resumable && pick.stop && pick.served == run.targets.len() && !lost {
            if let (Some(shown_ts), Some(next_ts)) = (pick.best_ts, pick.next_ts) {
                self.position = Some(Position {
                    key_ts: pick.key_ts,
                    key_dts,
                    later_key,
                    shown: std::mem::replace(
                        &mut pick.best,
                        Frame::new().map_err(MediaError::internal)?,
                    ),
                    shown_ts,
                    next: std::mem::replace(
                        &mut pick.next,
                        Frame::new().map_err(MediaError::internal)?,
                    ),
                    next_ts,
                    recent,
                    all_pts,
                    read_dts: pick.read_dts,
                    last_ts: pick.last_ts,
                    from_start: run.from_start,
                });
            }
        }
        if !pick.stop {
            // The data ended: nothing is left to seek to, and what comes out
            // of the decoder now serves the remaining targets.
            pick.read_dts = i64::MAX;
            let _ = self.decoder.send_eof();
            self.drain(&mut frame, &mut |f: &mut Frame, ts: Option<i64>| {
                pick.offer(f, ts, each)
            })?;
            if let Some(err) = pick.error.take() {
                return Err(err);
            }
            // The last frame is shown until the end.
            while pick.best_ts.is_some() && pick.served < run.targets.len() {
                pick.emit(each)?;
            }
        }
        match pick.served {
            0 if run.from_start => Err(MediaError::Corrupt),
            0 => Ok(RunEnd::TooLate(pick.key_ts.unwrap_or(run.targets[0]))),
            n => Ok(RunEnd::Served(n)),
        }
    }

    /// Whether draining the decoder, in a run that started at the keyframe
    /// `key`, gives every picture decoded since: not after an H.264
    /// keyframe that is not an IDR picture (an open GOP's I-frame with a
    /// recovery point). FFmpeg's H.264 decoder marks a picture decoded
    /// before such a keyframe came out as recovered only when the picture
    /// comes out the ordinary way, after the keyframe; the final drain
    /// silently drops it (with reordering and frame threads, the first few
    /// frames of the group). A run from there decodes on until a frame
    /// after its last target comes out instead, as a run with more data
    /// does (and as the `ffmpeg` command line, which reads on, shows).
    fn drain_gives_everything(&self, key: &Packet) -> bool {
        if self.stream.codec_name != "h264" {
            return true;
        }
        self.disposable.h264_framing().is_some_and(|framing| {
            units(framing, key.data()).any(|unit| {
                // nal_unit_type 5: a slice of an IDR picture.
                unit.and_then(<[u8]>::first)
                    .is_some_and(|header| header & 0x1f == 5)
            })
        })
    }

    /// Sends one packet of an exact run (frames go to `pick`); returns
    /// whether `pick` asked to stop.
    fn feed(
        &mut self,
        packet: &Packet,
        discard: Discard,
        frame: &mut Frame,
        pick: &mut MultiPick<'_, '_>,
        each: &mut dyn FnMut(usize, &DecodedFrame) -> Result<(), MediaError>,
    ) -> Result<bool, MediaError> {
        self.decoder.set_discard(discard);
        let mut cb = |f: &mut Frame, ts: Option<i64>| pick.offer(f, ts, each);
        Ok(self.send(packet, frame, &mut cb)? || self.drain(frame, &mut cb)?)
    }

    /// Sends `packet` (its picture may be cut when `discard` allows skipping
    /// it) through `plan` when there is one, else straight to the
    /// decoder; returns whether `pick` asked to stop.
    fn feed_planned(
        &mut self,
        plan: &mut Option<ReferencePlan>,
        packet: Packet,
        discard: Discard,
        frame: &mut Frame,
        pick: &mut MultiPick<'_, '_>,
        each: &mut dyn FnMut(usize, &DecodedFrame) -> Result<(), MediaError>,
    ) -> Result<bool, MediaError> {
        match plan.as_mut() {
            Some(plan) => {
                plan.push(packet, discard, discard != Discard::Nothing);
                self.feed_released(plan, frame, pick, each)
            }
            None => self.feed(&packet, discard, frame, pick, each),
        }
    }

    /// Feeds what `plan` lets go; returns whether `pick` asked to stop.
    fn feed_released(
        &mut self,
        plan: &mut ReferencePlan,
        frame: &mut Frame,
        pick: &mut MultiPick<'_, '_>,
        each: &mut dyn FnMut(usize, &DecodedFrame) -> Result<(), MediaError>,
    ) -> Result<bool, MediaError> {
        while let Some(release) = plan.next() {
            if self.feed(&release.packet, release.discard, frame, pick, each)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn seek(&mut self, ts: i64, from_start: bool) -> Result<(), MediaError> {
        self.position = None;
        self.decoder.flush();
        self.decoder.set_discard(Discard::Nothing);
        let index = self.stream.index;
        if from_start && !self.touched {
            return Ok(());
        }
        self.touched = false;
        let result = if from_start {
            self.input.seek_to_start(index)
        } else {
            self.input
                .seek_backward(index, ts)
                .or_else(|_| self.input.seek_to_start(index))
        };
        result.map_err(|e| read_failure(&mut self.input, e).unwrap_or(MediaError::Corrupt))
    }

    fn check_interrupt(&self) -> Result<(), MediaError> {
        if self.input.interrupt().triggered() {
            Err(interrupted(self.input.interrupt()))
        } else {
            Ok(())
        }
    }

    /// Reads the next packet of our stream; `Ok(false)` at the end of the
    /// data (or where damaged data makes it end).
    fn next_packet(&mut self, packet: &mut Packet) -> Result<bool, MediaError> {
        loop {
            self.check_interrupt()?;
            self.touched = true;
            match self.input.read_packet(packet) {
                Ok(()) if packet.stream_index() == self.stream.index => return Ok(true),
                Ok(()) => continue,
                Err(AvError::Eof) => return Ok(false),
                Err(e) => {
                    return match read_failure(&mut self.input, e) {
                        Some(err) => Err(err),
                        None => Ok(false),
                    }
                }
            }
        }
    }

    /// Keyframe mode: scan packets for the last keyframe at or before
    /// `target`, then decode that packet alone.
    fn keyframe_attempt(&mut self, target: i64, from_start: bool) -> Result<Attempt, MediaError> {
        let mut packet = Packet::new().map_err(MediaError::internal)?;
        let mut chosen: Option<(Packet, i64)> = None;
        while self.next_packet(&mut packet)? {
            // Later packets have dts >= this one and pts >= dts: no later
            // keyframe can be at or before the target.
            if let Some(dts) = packet.dts().filter(|&d| d > target) {
                if chosen.is_some() {
                    break;
                }
                if !from_start {
                    return Ok(Attempt::TooLate(dts));
                }
            }
            if !packet.is_key() {
                continue;
            }
            let Some(ts) = packet.pts().or(packet.dts()) else {
                continue;
            };
            if ts > target {
                if chosen.is_none() && !from_start {
                    return Ok(Attempt::TooLate(ts));
                }
                if chosen.is_none() {
                    chosen = Some((packet, ts));
                }
                break;
            }
            let replacement = Packet::new().map_err(MediaError::internal)?;
            chosen = Some((std::mem::replace(&mut packet, replacement), ts));
            // An index seek lands on the keyframe with the largest indexed
            // time (dts or pts, both <= pts) at or before the target; every
            // later keyframe is indexed after the target, so its pts is too.
            if !from_start && self.input.seeks_by_index() {
                break;
            }
        }
        let Some((key, ts)) = chosen else {
            return if from_start {
                Err(MediaError::Corrupt)
            } else {
                Ok(Attempt::TooLate(target))
            };
        };
        let mut frame = Frame::new().map_err(MediaError::internal)?;
        self.decoder.flush();
        self.send(&key, &mut frame, &mut |_, _| false)?;
        let _ = self.decoder.send_eof();
        match self.decoder.receive_frame(&mut frame) {
            Ok(()) => {
                check_pixels(frame.width(), frame.height(), self.max_source_pixels)?;
                Ok(Attempt::Found(frame, ts))
            }
            Err(_) => Err(MediaError::Corrupt),
        }
    }

    /// Sends a packet, draining frames (through `on_frame`, which returns
    /// true to stop) while the decoder is full. Damaged packets are skipped.
    /// Returns whether `on_frame` asked to stop.
    fn send(
        &mut self,
        packet: &Packet,
        frame: &mut Frame,
        on_frame: &mut dyn FnMut(&mut Frame, Option<i64>) -> bool,
    ) -> Result<bool, MediaError> {
        loop {
            match self.decoder.send_packet(packet) {
                Ok(()) => return Ok(false),
                Err(AvError::Again) => {
                    if self.drain(frame, on_frame)? {
                        return Ok(true);
                    }
                }
                Err(AvError::InvalidData | AvError::Eof) => return Ok(false),
                Err(e) => return Err(MediaError::internal(e)),
            }
        }
    }

    /// Receives every frame available now. Returns whether `on_frame` asked
    /// to stop.
    fn drain(
        &mut self,
        frame: &mut Frame,
        on_frame: &mut dyn FnMut(&mut Frame, Option<i64>) -> bool,
    ) -> Result<bool, MediaError> {
        loop {
            match self.decoder.receive_frame(frame) {
                Ok(()) => {
                    check_pixels(frame.width(), frame.height(), self.max_source_pixels)?;
                    let ts = frame.timestamp();
                    if on_frame(frame, ts) {
                        return Ok(true);
                    }
                }
                Err(AvError::Again | AvError::Eof) => return Ok(false),
                // A damaged frame: keep going with the next one.
                Err(AvError::InvalidData) => continue,
                Err(e) => return Err(MediaError::internal(e)),
            }
        }
    }

    /// One frame interval in stream time-base units (1 when unknown).
    fn frame_step(&self) -> i64 {
        let (tb, fps) = (self.stream.time_base, self.stream.frame_rate);
        let step =
            f64::from(tb.den) * f64::from(fps.den) / (f64::from(tb.num) * f64::from(fps.num));
        if step.is_finite() && step >= 1.0 {
            step.round() as i64
        } else {
            1
        }
    }
}

/// The targets of one forward run of [`Video::frames_at`].
struct Run<'a> {
    /// Stream timestamps, ascending.
    targets: &'a [i64],
    /// For each target, the indexed keyframe at or before it.
    keyframes: &'a [Option<i64>],
    /// Position of `targets[0]` in the caller's list.
    first_index: usize,
    /// The run started at the beginning of the media.
    from_start: bool,
}

/// How a run ended.
enum RunEnd {
    /// This many targets were served.
    Served(usize),
    /// The seek landed after the first target.
    TooLate(i64),
}

/// [`Pick`] for many targets: frames come out in presentation order; each
/// target gets the last frame at or before it.
struct MultiPick<'r, 'a> {
    run: &'r Run<'a>,
    served: usize,
    key_ts: Option<i64>,
    step: i64,
    last_ts: Option<i64>,
    best: Frame,
    best_ts: Option<i64>,
    /// The largest decode timestamp read so far.
    read_dts: i64,
    seek_gap: i64,
    /// The frame that came out after the last target was served.
    next: Frame,
    next_ts: Option<i64>,
    error: Option<MediaError>,
    origin: i64,
    tb: Rational,
    orientation: Orientation,
    sar: Rational,
    /// The run should end (all served, an error, or a seek is better).
    stop: bool,
}

impl MultiPick<'_, '_> {
    fn offer(
        &mut self,
        frame: &mut Frame,
        ts: Option<i64>,
        each: &mut dyn FnMut(usize, &DecodedFrame) -> Result<(), MediaError>,
    ) -> bool {
        let Some(ts) = ts
            .or_else(|| self.last_ts.map(|l| l + self.step))
            .or(self.key_ts)
        else {
            return false;
        };
        self.last_ts = Some(ts);
        if self.key_ts.is_some_and(|k| ts < k) {
            return false;
        }
        loop {
            if self.stop {
                return true;
            }
            if self.served == self.run.targets.len() {
                // Kept for a resumed run: it may be on screen at its target.
                self.next.take_from(frame);
                self.next_ts = Some(ts);
                self.stop = true;
                return true;
            }
            let target = self.run.targets[self.served];
            if ts <= target {
                self.best.take_from(frame);
                self.best_ts = Some(ts);
                return false;
            }
            if self.best_ts.is_none() {
                if !self.run.from_start {
                    // Leave `served` at 0: the caller seeks earlier.
                    self.stop = true;
                    return true;
                }
                // The time is before the first frame: show the first frame.
                self.best.take_from(frame);
                self.best_ts = Some(ts);
            }
            if let Err(err) = self.emit(each) {
                self.error = Some(err);
                self.stop = true;
                return true;
            }
            if self.served < self.run.targets.len() && self.seek_is_better() {
                self.stop = true;
                return true;
            }
        }
    }

    /// Hands the best frame to `each` for the next unserved target.
    fn emit(
        &mut self,
        each: &mut dyn FnMut(usize, &DecodedFrame) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        let ts = self.best_ts.expect("a frame to emit");
        let frame = std::mem::replace(&mut self.best, Frame::new().map_err(MediaError::internal)?);
        let sar = match frame.sample_aspect_ratio() {
            r if r.to_f64().is_some() => r,
            _ => self.sar,
        };
        let decoded = DecodedFrame {
            frame,
            pts_seconds: (ts - self.origin) as f64 * f64::from(self.tb.num)
                / f64::from(self.tb.den),
            orientation: self.orientation,
            sample_aspect_ratio: sar,
        };
        let result = each(self.run.first_index + self.served, &decoded);
        self.best = decoded.frame;
        self.served += 1;
        result
    }

    /// Whether the next target is reached sooner by a seek than by decoding
    /// on: its keyframe has not been read yet.
    fn seek_is_better(&self) -> bool {
        let next = self.run.targets[self.served];
        match self.run.keyframes[self.served] {
            Some(key) => key > self.read_dts,
            None => next.saturating_sub(self.read_dts) > self.seek_gap,
        }
    }
}

/// Refuses pictures above the pixel budget.
fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<(), MediaError> {
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(MediaError::SourceTooLarge {
            width,
            height,
            max_pixels,
        });
    }
    Ok(())
}
