//! Hostile and odd input at the packet level, from a hand-driven client:
//! unknown commands, malformed and truncated packets, oversized packets.
//! Each gets an error (or a closed connection for that client only) and the
//! server keeps serving everyone else.

use std::collections::HashMap;
use std::net::SocketAddr;

use duet_tests::TestServer;
use mysql_async::prelude::*;
use mysql_common::constants::CapabilityFlags;
use mysql_common::packets::{AuthPlugin, HandshakeResponse};
use mysql_common::proto::MySerialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A minimal client speaking raw packets.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    /// Connects and logs in as root (no password) with CLIENT_DEPRECATE_EOF.
    async fn login(addr: SocketAddr) -> Raw {
        let mut raw = Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
        };
        let (_, greeting) = raw.read().await.expect("greeting");
        assert_eq!(greeting[0], 10, "protocol 10 handshake");
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_DEPRECATE_EOF
            | CapabilityFlags::CLIENT_LONG_PASSWORD;
        let response = HandshakeResponse::new(
            Some(&b""[..]),
            (8, 0, 11),
            Some(&b"root"[..]),
            None::<&[u8]>,
            Some(AuthPlugin::MysqlNativePassword),
            caps,
            None::<HashMap<String, String>>,
            1 << 24,
        );
        let mut payload = Vec::new();
        response.serialize(&mut payload);
        raw.write(1, &payload).await;
        let (_, ok) = raw.read().await.expect("login answer");
        assert_eq!(ok[0], 0x00, "login OK, got {ok:?}");
        raw
    }

    async fn write(&mut self, seq: u8, payload: &[u8]) {
        let len = payload.len() as u32;
        let mut frame = len.to_le_bytes()[..3].to_vec();
        frame.push(seq);
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).await.unwrap();
    }

    /// One packet, or `None` if the server closed the connection.
    async fn read(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).await.ok()?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await.ok()?;
        Some((header[3], body))
    }

    /// Sends a command and returns the first packet of the reply.
    async fn command(&mut self, payload: &[u8]) -> Vec<u8> {
        self.write(0, payload).await;
        self.read().await.expect("a reply").1
    }
}

fn err_code(packet: &[u8]) -> u16 {
    assert_eq!(packet[0], 0xff, "expected an ERR packet, got {packet:?}");
    u16::from_le_bytes([packet[1], packet[2]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_commands_get_errors_and_the_connection_lives() {
    let t = TestServer::start().await;
    let mut other = t.connect().await;
    let mut raw = Raw::login(t.mysql_addr()).await;

    assert_eq!(
        err_code(&raw.command(&[0x99, 1, 2, 3]).await),
        1047,
        "unknown command"
    );
    assert_eq!(err_code(&raw.command(&[]).await), 1835, "empty packet");
    // COM_STMT_EXECUTE with a truncated statement id, then for an unknown statement.
    assert_eq!(err_code(&raw.command(&[0x17, 1]).await), 1835);
    assert_eq!(
        err_code(&raw.command(&[0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0]).await),
        1243
    );
    // A prepared statement executed with a truncated parameter block.
    let mut prepare = vec![0x16];
    prepare.extend_from_slice(b"SELECT ?");
    let ok = raw.command(&prepare).await;
    assert_eq!(ok[0], 0x00, "prepare ok");
    let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    let _param_def = raw.read().await.expect("parameter definition");
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 8, 0, 1, 2]); // LONGLONG with 2 of 8 bytes
    assert_eq!(err_code(&raw.command(&exec).await), 1835);
    // COM_QUERY with invalid UTF-8.
    assert_eq!(err_code(&raw.command(&[0x03, 0xff, 0xfe]).await), 1300);

    // Still usable: COM_PING answers OK, COM_QUERY answers a result.
    assert_eq!(raw.command(&[0x0e]).await[0], 0x00);
    let mut q = vec![0x03];
    q.extend_from_slice(b"SELECT 1");
    assert_eq!(raw.command(&q).await, vec![1], "one column");

    // And nobody else noticed.
    let one: Option<i64> = other.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_packet_closes_only_that_connection() {
    let t = TestServer::start_with(|c| c.max_allowed_packet = 4096).await;
    let mut other = t.connect().await;
    let mut raw = Raw::login(t.mysql_addr()).await;
    let mut big = vec![0x03];
    big.extend_from_slice(format!("SELECT '{}'", "x".repeat(8192)).as_bytes());
    raw.write(0, &big).await;
    let (_, reply) = raw.read().await.expect("an error before closing");
    assert_eq!(err_code(&reply), 1153);
    assert!(
        raw.read().await.is_none(),
        "connection closed after the oversized packet"
    );
    let one: Option<i64> = other.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_handshake_is_refused() {
    let t = TestServer::start().await;
    let mut raw = Raw {
        stream: TcpStream::connect(t.mysql_addr()).await.unwrap(),
    };
    let _greeting = raw.read().await.expect("greeting");
    raw.write(1, b"this is not a handshake response").await;
    let (_, reply) = raw.read().await.expect("an error");
    assert_eq!(err_code(&reply), 1043);
    // A client that connects and vanishes without a word.
    drop(TcpStream::connect(t.mysql_addr()).await.unwrap());
    let mut c = t.connect().await;
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_row_over_max_allowed_packet_ends_with_an_error_and_a_close() {
    let t = TestServer::start_with(|c| c.max_allowed_packet = 4096).await;
    let mut raw = Raw::login(t.mysql_addr()).await;
    let mut prepare = vec![0x16];
    prepare.extend_from_slice(b"SELECT ?");
    let ok = raw.command(&prepare).await;
    let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    let _param_def = raw.read().await.expect("parameter definition");
    // 9,000 bytes of parameter in three long-data packets (no reply to those).
    for _ in 0..3 {
        let mut long = vec![0x18];
        long.extend_from_slice(&id.to_le_bytes());
        long.extend_from_slice(&0u16.to_le_bytes());
        long.extend_from_slice(&[b'x'; 3000]);
        raw.write(0, &long).await;
    }
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 0xfd, 0]); // VAR_STRING, value from long data
    raw.write(0, &exec).await;
    let mut last = Vec::new();
    while let Some((_, packet)) = raw.read().await {
        last = packet;
    }
    assert_eq!(
        err_code(&last),
        1153,
        "the response ends with ER_NET_PACKET_TOO_LARGE, then the connection closes"
    );
    let mut c = t.connect().await;
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_vanishes_mid_result_disturbs_nobody() {
    let t = TestServer::start().await;
    let mut other = t.connect().await;
    let mut raw = Raw::login(t.mysql_addr()).await;
    let mut prepare = vec![0x16];
    prepare.extend_from_slice(b"SELECT ?, ?, ?, ?");
    let ok = raw.command(&prepare).await;
    let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    for _ in 0..4 {
        let _param_def = raw.read().await.expect("parameter definition");
    }
    // Four 2 MiB parameters: an 8 MiB row the client will never read.
    for param in 0..4u16 {
        for _ in 0..2 {
            let mut long = vec![0x18];
            long.extend_from_slice(&id.to_le_bytes());
            long.extend_from_slice(&param.to_le_bytes());
            long.extend_from_slice(&vec![b'x'; 1 << 20]);
            raw.write(0, &long).await;
        }
    }
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id.to_le_bytes());
    exec.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 0xfd, 0, 0xfd, 0, 0xfd, 0, 0xfd, 0]);
    raw.write(0, &exec).await;
    drop(raw);
    for _ in 0..3 {
        let one: Option<i64> = other.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
    }
    let mut fresh = t.connect().await;
    let two: Option<i64> = fresh.query_first("SELECT 2").await.unwrap();
    assert_eq!(two, Some(2));
}
