//! Response documents as a tree of named nodes, written as COS-style XML or
//! as JSON (repeated names become arrays): the CI adapter's documents and
//! callbacks, and media information.

use std::borrow::Cow;

use crate::media::{MediaDescription, StreamDescription, Timing};
use crate::proto::xml::XmlWriter;

/// A node of a response document, rendered as XML or (for callbacks) JSON.
#[derive(Debug, Clone)]
pub enum Node {
    /// `<name>text</name>`.
    Leaf(Cow<'static, str>, String),
    /// `<name>children</name>`.
    Branch(Cow<'static, str>, Vec<Node>),
}

impl Node {
    /// A text node.
    pub fn leaf(name: impl Into<Cow<'static, str>>, value: impl ToString) -> Self {
        Node::Leaf(name.into(), value.to_string())
    }

    /// A node with children.
    pub fn branch(name: impl Into<Cow<'static, str>>, children: Vec<Node>) -> Self {
        Node::Branch(name.into(), children)
    }

    /// The same node under another name.
    pub fn renamed(self, name: &'static str) -> Self {
        match self {
            Node::Leaf(_, value) => Node::Leaf(name.into(), value),
            Node::Branch(_, children) => Node::Branch(name.into(), children),
        }
    }
}

/// Unix milliseconds as both API dialects write times:
/// `2019-07-16T15:32:50Z`.
pub fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Writes `nodes` into `doc`, in order.
pub fn write_xml(doc: &mut XmlWriter, nodes: &[Node]) {
    for node in nodes {
        match node {
            Node::Leaf(name, value) => {
                doc.text(name, value);
            }
            Node::Branch(name, children) => {
                doc.open(name.clone());
                write_xml(doc, children);
                doc.close();
            }
        }
    }
}

/// JSON of nodes: repeated names become arrays.
pub fn to_json(nodes: &[Node]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for node in nodes {
        let (name, value) = match node {
            Node::Leaf(name, value) => (name, serde_json::Value::String(value.clone())),
            Node::Branch(name, children) => (name, to_json(children)),
        };
        match map.get_mut(name.as_ref()) {
            Some(serde_json::Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = serde_json::Value::Array(vec![first, value]);
            }
            None => {
                map.insert(name.to_string(), value);
            }
        }
    }
    serde_json::Value::Object(map)
}

/// `MediaInfo` as COS's GetMediaInfo names it: `Stream` (each stream in
/// file order) and `Format`; bit rates in kbit/s.
pub fn media_info_nodes(info: &MediaDescription) -> Vec<Node> {
    let streams = info.streams.iter().map(stream_node).collect();
    let f = &info.format;
    vec![
        Node::branch("Stream", streams),
        Node::branch(
            "Format",
            vec![
                Node::leaf("NumStream", f.streams),
                Node::leaf("NumProgram", f.programs),
                Node::leaf("FormatName", &f.name),
                Node::leaf("FormatLongName", &f.long_name),
                Node::leaf("StartTime", seconds(f.start)),
                Node::leaf("Duration", seconds(f.duration)),
                Node::leaf("Bitrate", kbps(f.bitrate)),
                Node::leaf("Size", f.size),
            ],
        ),
    ]
}

fn seconds(s: f64) -> String {
    format!("{s:.6}")
}

fn kbps(bits: u64) -> String {
    format!("{:.3}", bits as f64 / 1000.0)
}

fn ratio(r: crate::av::Rational, sep: char) -> String {
    format!("{}{sep}{}", r.num, r.den)
}

fn timing_nodes(t: &Timing) -> [Node; 3] {
    [
        Node::leaf("Timebase", ratio(t.time_base, '/')),
        Node::leaf("StartTime", seconds(t.start)),
        Node::leaf("Duration", seconds(t.duration)),
    ]
}

fn codec_nodes(index: usize, c: &crate::media::CodecDescription) -> Vec<Node> {
    vec![
        Node::leaf("Index", index),
        Node::leaf("CodecName", &c.name),
        Node::leaf("CodecLongName", &c.long_name),
        Node::leaf("CodecTagString", c.tag_string()),
        Node::leaf("CodecTag", format!("0x{:08x}", c.tag)),
        Node::leaf("Profile", &c.profile),
        Node::leaf("Level", c.level),
    ]
}

fn stream_node(stream: &StreamDescription) -> Node {
    match stream {
        StreamDescription::Video(v) => {
            let mut n = codec_nodes(v.index, &v.codec);
            n.extend([
                Node::leaf(
                    "CodecTimeBase",
                    if v.fps > 0.0 {
                        format!("1/{}", v.fps)
                    } else {
                        String::new()
                    },
                ),
                Node::leaf("Width", v.width),
                Node::leaf("Height", v.height),
                Node::leaf("HasBFrame", u8::from(v.has_b_frames)),
                Node::leaf("Sar", ratio(v.sar, ':')),
                Node::leaf("Dar", ratio(v.dar, ':')),
                Node::leaf("PixFormat", &v.pixel_format),
                Node::leaf("FieldOrder", &v.field_order),
                Node::leaf("ColorPrimaries", &v.color_primaries),
                Node::leaf("ColorRange", &v.color_range),
                Node::leaf("ColorTransfer", &v.color_transfer),
                Node::leaf("Fps", format!("{:.3}", v.fps)),
                Node::leaf("AvgFps", format!("{:.3}", v.avg_fps)),
            ]);
            n.extend(timing_nodes(&v.timing));
            n.extend([
                Node::leaf("Bitrate", kbps(v.bitrate)),
                Node::leaf("NumFrames", v.frames),
                Node::leaf("Language", &v.language),
                Node::leaf("Rotation", v.rotation),
            ]);
            Node::branch("Video", n)
        }
        StreamDescription::Audio(a) => {
            let mut n = codec_nodes(a.index, &a.codec);
            n.extend([
                Node::leaf("CodecTimeBase", format!("1/{}", a.sample_rate)),
                Node::leaf("SampleFmt", &a.sample_format),
                Node::leaf("SampleRate", a.sample_rate),
                Node::leaf("Channel", a.channels),
                Node::leaf("ChannelLayout", &a.channel_layout),
            ]);
            n.extend(timing_nodes(&a.timing));
            n.extend([
                Node::leaf("Bitrate", kbps(a.bitrate)),
                Node::leaf("Language", &a.language),
            ]);
            Node::branch("Audio", n)
        }
        StreamDescription::Subtitle { index, language } => Node::branch(
            "Subtitle",
            vec![Node::leaf("Index", index), Node::leaf("Language", language)],
        ),
    }
}
