//! Dumps an AMF0 command body as an indented tree, with the offset of each top-level value.
//!
//! Without arguments it dumps the `connect` command FFmpeg 5.1 sends when publishing (the AMF0 body of
//! the message, captured on the wire, chunk headers removed). With a file argument it dumps that file.
//!
//! ```text
//! cargo run -p rtmp-amf --example dump_connect [FILE]
//! ```

use rtmp_amf::{Amf0Decoder, Amf0Value, Amf3Value};

/// `connect(1, {app, type, flashVer, tcUrl})` as FFmpeg 5.1.9 wrote it.
const FFMPEG_CONNECT: &[u8] = &[
    0x02, 0x00, 0x07, 0x63, 0x6f, 0x6e, 0x6e, 0x65, 0x63, 0x74, 0x00, 0x3f, 0xf0, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x03, 0x00, 0x03, 0x61, 0x70, 0x70, 0x02, 0x00, 0x04, 0x6c, 0x69, 0x76, 0x65,
    0x00, 0x04, 0x74, 0x79, 0x70, 0x65, 0x02, 0x00, 0x0a, 0x6e, 0x6f, 0x6e, 0x70, 0x72, 0x69, 0x76,
    0x61, 0x74, 0x65, 0x00, 0x08, 0x66, 0x6c, 0x61, 0x73, 0x68, 0x56, 0x65, 0x72, 0x02, 0x00, 0x24,
    0x46, 0x4d, 0x4c, 0x45, 0x2f, 0x33, 0x2e, 0x30, 0x20, 0x28, 0x63, 0x6f, 0x6d, 0x70, 0x61, 0x74,
    0x69, 0x62, 0x6c, 0x65, 0x3b, 0x20, 0x4c, 0x61, 0x76, 0x66, 0x35, 0x39, 0x2e, 0x32, 0x37, 0x2e,
    0x31, 0x30, 0x30, 0x29, 0x00, 0x05, 0x74, 0x63, 0x55, 0x72, 0x6c, 0x02, 0x00, 0x1b, 0x72, 0x74,
    0x6d, 0x70, 0x3a, 0x2f, 0x2f, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31, 0x3a, 0x31,
    0x39, 0x33, 0x35, 0x31, 0x2f, 0x6c, 0x69, 0x76, 0x65, 0x00, 0x00, 0x09,
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bytes = match std::env::args_os().nth(1) {
        Some(path) => std::fs::read(path)?,
        None => FFMPEG_CONNECT.to_vec(),
    };
    let mut decoder = Amf0Decoder::new(&bytes);
    loop {
        let offset = decoder.position();
        let Some(value) = decoder.next_value()? else {
            break;
        };
        print!("@{offset:04} ");
        dump_amf0(&value, 0);
    }
    println!("{} bytes, all decoded", bytes.len());
    Ok(())
}

fn dump_amf0(value: &Amf0Value, indent: usize) {
    let pad = "  ".repeat(indent);
    let properties = |name: &str, properties: &[(String, Amf0Value)]| {
        println!("{name} ({} properties)", properties.len());
        for (key, value) in properties {
            print!("{pad}  {key}: ");
            dump_amf0(value, indent + 1);
        }
    };
    match value {
        Amf0Value::Number(n) => println!("number {n}"),
        Amf0Value::Boolean(b) => println!("boolean {b}"),
        Amf0Value::String(s) | Amf0Value::LongString(s) => println!("string {s:?}"),
        Amf0Value::Null => println!("null"),
        Amf0Value::Undefined => println!("undefined"),
        Amf0Value::Object(props) => properties("object", props),
        Amf0Value::EcmaArray(props) => properties("ecma-array", props),
        Amf0Value::TypedObject {
            class_name,
            properties: props,
        } => properties(&format!("typed-object {class_name}"), props),
        Amf0Value::StrictArray(items) => {
            println!("strict-array ({} items)", items.len());
            for item in items {
                print!("{pad}  - ");
                dump_amf0(item, indent + 1);
            }
        }
        Amf0Value::Avmplus(value) => dump_amf3(value, indent),
        other => println!("{other:?}"),
    }
}

fn dump_amf3(value: &Amf3Value, indent: usize) {
    let pad = "  ".repeat(indent);
    match value {
        Amf3Value::Object(object) => {
            println!("amf3 object {:?}", object.class_name);
            for (key, value) in object.members() {
                print!("{pad}  {key}: ");
                dump_amf3(value, indent + 1);
            }
        }
        other => println!("amf3 {other:?}"),
    }
}
