//! One client connection: the handshake (within `connect_timeout`, failed
//! logins from an address delayed), then a loop that reads a command,
//! hands it to the session on the connection's statement thread
//! ([`super::worker`]), and writes the answer as it comes — a result's rows
//! as the query makes them. While a statement runs the socket is still
//! watched: a client that goes away stops its statement. Anything a client
//! sends — a malformed packet, an unknown command, a packet over
//! `max_allowed_packet` — ends in an ERR packet or in closing this
//! connection only; nothing here can take the server down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BytesMut;
use duet_sql::{Column, Identity, Output, Session, SessionStatus, Value};
use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakeResponse};
use mysql_common::proto::codec::PacketCodec;
use mysql_common::proto::codec::error::PacketCodecError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::packets::{self, ErrorReply, StatementState};
use super::worker::{Event, Worker};
use super::{Shared, SlotGuard, auth};

/// What the server offers; a connection uses the intersection with the client's.
const SERVER_CAPABILITIES: CapabilityFlags = CapabilityFlags::CLIENT_LONG_PASSWORD
    .union(CapabilityFlags::CLIENT_FOUND_ROWS)
    .union(CapabilityFlags::CLIENT_LONG_FLAG)
    .union(CapabilityFlags::CLIENT_CONNECT_WITH_DB)
    .union(CapabilityFlags::CLIENT_PROTOCOL_41)
    .union(CapabilityFlags::CLIENT_INTERACTIVE)
    .union(CapabilityFlags::CLIENT_TRANSACTIONS)
    .union(CapabilityFlags::CLIENT_SECURE_CONNECTION)
    .union(CapabilityFlags::CLIENT_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_PS_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH)
    .union(CapabilityFlags::CLIENT_CONNECT_ATTRS)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
    .union(CapabilityFlags::CLIENT_DEPRECATE_EOF);

/// How rows are encoded: text for COM_QUERY, binary for COM_STMT_EXECUTE.
#[derive(Clone, Copy)]
enum RowFormat {
    Text,
    Binary,
}

/// Flush the output buffer once it holds this much.
const FLUSH_AT: usize = 64 * 1024;

/// Why a connection ends early.
enum Close {
    /// The peer went away or the socket failed.
    Io(std::io::Error),
    /// We sent a final error (bad login, oversized packet) and hang up.
    AfterError,
    /// `KILL CONNECTION`, a shutdown, or the statement thread is gone.
    Killed,
}

/// A command's answer from the statement thread, with the session's state
/// after it (for the OK or EOF that ends the answer).
struct Done<T> {
    result: T,
    status: SessionStatus,
    warnings: u16,
}

impl From<std::io::Error> for Close {
    fn from(e: std::io::Error) -> Self {
        Close::Io(e)
    }
}

type Step<T = ()> = Result<T, Close>;

pub(super) struct Connection {
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u32,
    codec: PacketCodec,
    input: BytesMut,
    output: BytesMut,
    caps: CapabilityFlags,
    statements: HashMap<u32, StatementState>,
    /// The statement thread, once logged in.
    worker: Option<Worker>,
    /// The session's state as of its last answer.
    status: SessionStatus,
    /// The session slot the login took.
    slot: Option<SlotGuard>,
}

impl Connection {
    pub(super) fn new(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, id: u32) -> Self {
        let mut codec = PacketCodec::default();
        codec.max_allowed_packet = shared.max_allowed_packet;
        Connection {
            shared,
            stream,
            peer,
            id,
            codec,
            input: BytesMut::with_capacity(16 * 1024),
            output: BytesMut::with_capacity(16 * 1024),
            caps: SERVER_CAPABILITIES,
            statements: HashMap::new(),
            worker: None,
            status: SessionStatus {
                autocommit: true,
                in_transaction: false,
            },
            slot: None,
        }
    }

    /// Serves the connection until the client quits, fails, or `shutdown` fires
    /// while it is idle.
    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        let login = tokio::time::timeout(self.shared.connect_timeout, self.handshake()).await;
        let result = match login {
            Ok(Ok(true)) => self.command_loop(&shutdown).await,
            Ok(Ok(false)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                debug!(conn = self.id, peer = %self.peer, "no login within connect_timeout");
                Ok(())
            }
        };
        if let Err(Close::Io(e)) = result {
            debug!(conn = self.id, peer = %self.peer, error = %e, "connection closed");
        }
        let _ = self.stream.shutdown().await;
    }

    /// Sends ERR 1040 instead of a handshake.
    pub(super) async fn refuse_too_many(mut self) {
        self.codec.reset_seq_id();
        let e = ErrorReply::new(1040, "08004", "Too many connections");
        if self.send(packets::err(&e)).await.is_ok() {
            let _ = self.flush().await;
        }
    }

    /// Greets the client and checks its login; `true` once it is in, with
    /// its statement thread started.
    async fn handshake(&mut self) -> Step<bool> {
        let scramble = auth::new_scramble();
        self.codec.reset_seq_id();
        self.send(packets::handshake(
            duet_sql::SERVER_VERSION,
            self.id,
            &scramble,
            SERVER_CAPABILITIES,
        ))
        .await?;
        self.flush().await?;
        let Some(packet) = self.read_packet().await? else {
            return Ok(false);
        };
        let Ok(response) = ParseBuf(&packet).parse::<HandshakeResponse<'_>>(()) else {
            return self
                .fatal(ErrorReply::new(1043, "08S01", "Bad handshake"))
                .await;
        };
        let client_caps = response.capabilities();
        if client_caps.contains(CapabilityFlags::CLIENT_SSL) {
            return self
                .fatal(ErrorReply::new(
                    1043,
                    "08S01",
                    "SSL is not offered by this server",
                ))
                .await;
        }
        if !client_caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
            return self
                .fatal(ErrorReply::new(
                    1043,
                    "08S01",
                    "Bad handshake: protocol 4.1 required",
                ))
                .await;
        }
        self.caps = SERVER_CAPABILITIES & client_caps;
        let user = String::from_utf8_lossy(response.user()).into_owned();
        let database = response
            .db_name()
            .map(|d| String::from_utf8_lossy(d).into_owned());
        let mut answer = response.scramble_buf().to_vec();
        let native = matches!(
            response.auth_plugin(),
            None | Some(AuthPlugin::MysqlNativePassword)
        );
        if !native {
            self.send(packets::auth_switch(&scramble)).await?;
            self.flush().await?;
            let Some(switched) = self.read_packet().await? else {
                return Ok(false);
            };
            answer = switched;
        }
        // An address that keeps failing waits longer for each answer.
        let delay = self.shared.logins.delay(self.peer.ip());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let account = auth::find_account(&self.shared.users, &user, self.peer.ip())
            .filter(|a| auth::password_matches(&a.password, &scramble, &answer));
        let Some(account) = account else {
            self.shared.metrics.auth_failures.inc();
            let failures = self.shared.logins.failed(self.peer.ip());
            warn!(conn = self.id, peer = %self.peer, %user, failures, "login failed");
            let using = if answer.is_empty() { "NO" } else { "YES" };
            let message = format!(
                "Access denied for user '{user}'@'{}' (using password: {using})",
                self.peer.ip()
            );
            return self.fatal(ErrorReply::new(1045, "28000", message)).await;
        };
        self.shared.logins.succeeded(self.peer.ip());
        let admin = account.is_admin();
        // Sessions, not sockets, hold the slots; an administrator may take
        // one beyond `max_connections`.
        let Some(slot) = self.shared.take_slot(admin) else {
            self.shared.metrics.connections_refused.inc();
            return self
                .fatal(ErrorReply::new(1040, "08004", "Too many connections"))
                .await;
        };
        self.slot = Some(slot);
        let identity = Identity {
            connection_id: self.id,
            user: user.clone(),
            client_host: self.peer.ip().to_string(),
            account_host: account.host.clone(),
            admin,
        };
        let session = self.shared.db.session(identity);
        let worker = match Worker::start(session, self.id) {
            Ok(w) => w,
            Err(e) => {
                warn!(conn = self.id, error = %e, "cannot start a statement thread");
                let e = ErrorReply::new(1135, "HY000", "Can't create a new thread");
                return self.fatal(e).await;
            }
        };
        self.worker = Some(worker);
        if let Some(db) = database.filter(|d| !d.is_empty()) {
            let used = self
                .call(move |s| s.use_database(&db), RowFormat::Text)
                .await?;
            if let Err(e) = used.result {
                return self.fatal(ErrorReply::from(&e)).await;
            }
        }
        self.send_ok(0, 0, "").await?;
        self.flush().await?;
        Ok(true)
    }

    /// Sends a final error and ends the connection.
    async fn fatal<T>(&mut self, e: ErrorReply) -> Step<T> {
        self.send(packets::err(&e)).await?;
        self.flush().await?;
        Err(Close::AfterError)
    }

    async fn command_loop(&mut self, shutdown: &CancellationToken) -> Step {
        let interrupt = match &self.worker {
            Some(w) => Arc::clone(&w.interrupt),
            None => return Ok(()),
        };
        loop {
            if interrupt.connection_killed() {
                return Err(Close::Killed);
            }
            self.codec.reset_seq_id();
            let packet = tokio::select! {
                p = self.read_packet() => p?,
                _ = shutdown.cancelled() => return Ok(()),
                _ = interrupt.connection_kill() => return Err(Close::Killed),
            };
            let Some(packet) = packet else { return Ok(()) };
            if !self.dispatch(&packet).await? {
                return Ok(());
            }
            self.flush().await?;
        }
    }

    /// Runs `f` on the session's thread and waits for its answer, writing
    /// the rows it streams meanwhile (in `format`). The socket is watched
    /// as it runs: a client that goes away stops the statement, which is
    /// still waited for (its transaction must settle before the session
    /// goes).
    async fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Session) -> T + Send + 'static,
        format: RowFormat,
    ) -> Step<Done<T>> {
        let Some(worker) = self.worker.as_mut() else {
            return Err(Close::Killed);
        };
        let interrupt = Arc::clone(&worker.interrupt);
        let mut answer = worker.submit(move |s| {
            let result = f(s);
            Done {
                result,
                status: s.status(),
                warnings: s.warning_count(),
            }
        });
        let mut columns: Vec<Column> = Vec::new();
        let mut gone: Option<Close> = None;
        loop {
            let Some(worker) = self.worker.as_mut() else {
                return Err(Close::Killed);
            };
            tokio::select! {
                biased;
                event = worker.events.recv() => {
                    let Some(event) = event else { continue };
                    if gone.is_some() {
                        continue;
                    }
                    if let Err(e) = self.write_event(event, &mut columns, format).await {
                        interrupt.kill_query();
                        gone = Some(e);
                    }
                }
                done = &mut answer => {
                    // What the thread sent before answering is queued: write it.
                    while let Some(event) = self.worker.as_mut().and_then(|w| w.events.try_recv().ok()) {
                        if gone.is_none()
                            && let Err(e) = self.write_event(event, &mut columns, format).await
                        {
                            gone = Some(e);
                        }
                    }
                    let done = done.map_err(|_| Close::Killed)?;
                    self.status = done.status;
                    return match gone {
                        Some(e) => Err(e),
                        None => Ok(done),
                    };
                }
                read = self.stream.read_buf(&mut self.input), if gone.is_none() => {
                    // Bytes are the client's next command; none is its end.
                    if !matches!(read, Ok(n) if n > 0) {
                        interrupt.kill_query();
                        gone = Some(Close::Io(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "the client went away during a statement",
                        )));
                    }
                }
            }
        }
    }

    /// Writes a result's columns or rows as they come from the statement.
    async fn write_event(
        &mut self,
        event: Event,
        columns: &mut Vec<Column>,
        format: RowFormat,
    ) -> Step {
        match event {
            Event::Columns(c) => {
                self.send(packets::column_count(c.len())).await?;
                for col in &c {
                    self.send(packets::column_def(col)).await?;
                }
                if !self.deprecate_eof() {
                    self.send(packets::eof(status_flags(self.status), 0))
                        .await?;
                }
                *columns = c;
            }
            Event::Rows(rows) => {
                for row in &rows {
                    let payload = match format {
                        RowFormat::Binary => packets::binary_row(columns, row),
                        RowFormat::Text => packets::text_row(row),
                    };
                    self.send(payload).await?;
                }
            }
        }
        Ok(())
    }

    /// Handles one command; `false` means the client said goodbye.
    async fn dispatch(&mut self, packet: &[u8]) -> Step<bool> {
        let Some((&command, body)) = packet.split_first() else {
            self.send_err(&ErrorReply::malformed()).await?;
            return Ok(true);
        };
        match command {
            0x01 => return Ok(false),
            0x02 => match std::str::from_utf8(body) {
                Ok(db) => {
                    let db = db.to_string();
                    let done = self
                        .call(move |s| s.use_database(&db), RowFormat::Text)
                        .await?;
                    match done.result {
                        Ok(()) => self.send_ok(0, 0, "").await?,
                        Err(e) => self.send_err(&ErrorReply::from(&e)).await?,
                    }
                }
                Err(_) => self.send_err(&ErrorReply::malformed()).await?,
            },
            0x03 => self.query(body).await?,
            0x04 => self.field_list(body).await?,
            0x09 => {
                let stats = format!(
                    "Uptime: {}  Threads: {}",
                    self.shared.started.elapsed().as_secs(),
                    self.shared.active.load(Ordering::Relaxed)
                );
                self.send(stats.into_bytes()).await?;
            }
            0x0e => self.send_ok(0, 0, "").await?,
            0x16 => self.prepare(body).await?,
            0x17 => self.execute(body).await?,
            0x18 => self.long_data(body),
            0x19 => {
                if let Some(id) = packets::Reader(body).u32() {
                    self.statements.remove(&id);
                    self.call(move |s| s.close_prepared(id), RowFormat::Text)
                        .await?;
                }
            }
            0x1a => self.reset_statement(body).await?,
            0x1b => match packets::Reader(body).u16() {
                Some(1) => {
                    let status = status_flags(self.status);
                    self.send(packets::eof(status, 0)).await?;
                }
                _ => {
                    let e = ErrorReply::new(
                        1235,
                        "42000",
                        "This version of Duet doesn't yet support 'multi-statements'",
                    );
                    self.send_err(&e).await?;
                }
            },
            0x1f => {
                self.call(Session::reset, RowFormat::Text).await?;
                self.statements.clear();
                self.send_ok(0, 0, "").await?;
            }
            _ => {
                self.send_err(&ErrorReply::new(1047, "08S01", "Unknown command"))
                    .await?
            }
        }
        Ok(true)
    }

    async fn query(&mut self, body: &[u8]) -> Step {
        let Ok(sql) = std::str::from_utf8(body) else {
            let e = ErrorReply::new(1300, "HY000", "Invalid utf8mb4 character string in query");
            return self.send_err(&e).await;
        };
        let sql = sql.to_string();
        let started = Instant::now();
        let done = self.call(move |s| s.execute(&sql), RowFormat::Text).await?;
        self.shared
            .metrics
            .observe_statement(started, done.result.is_ok());
        self.send_output(done).await
    }

    async fn field_list(&mut self, body: &[u8]) -> Step {
        let table = body.split(|b| *b == 0).next().unwrap_or_default();
        let table = String::from_utf8_lossy(table).into_owned();
        let done = self
            .call(move |s| s.field_list(&table), RowFormat::Text)
            .await?;
        match done.result {
            Ok(columns) => {
                for c in &columns {
                    self.send(packets::column_def(c)).await?;
                }
                self.send_end(true, done.warnings).await
            }
            Err(e) => self.send_err(&ErrorReply::from(&e)).await,
        }
    }

    async fn prepare(&mut self, body: &[u8]) -> Step {
        let Ok(sql) = std::str::from_utf8(body) else {
            return self.send_err(&ErrorReply::malformed()).await;
        };
        let sql = sql.to_string();
        let done = self.call(move |s| s.prepare(&sql), RowFormat::Text).await?;
        let meta = match done.result {
            Ok(meta) => meta,
            Err(e) => return self.send_err(&ErrorReply::from(&e)).await,
        };
        let columns = u16::try_from(meta.columns.len()).unwrap_or(u16::MAX);
        self.send(packets::prepare_ok(
            meta.id,
            columns,
            meta.params,
            done.warnings,
        ))
        .await?;
        if meta.params > 0 {
            let param = duet_sql::Column::expr("?", duet_sql::FieldType::VarString);
            for _ in 0..meta.params {
                self.send(packets::column_def(&param)).await?;
            }
            self.send_end(false, done.warnings).await?;
        }
        if !meta.columns.is_empty() {
            for c in &meta.columns {
                self.send(packets::column_def(c)).await?;
            }
            self.send_end(false, done.warnings).await?;
        }
        self.statements.insert(
            meta.id,
            StatementState {
                params: meta.params,
                ..Default::default()
            },
        );
        Ok(())
    }

    async fn execute(&mut self, body: &[u8]) -> Step {
        let mut r = packets::Reader(body);
        let Some(id) = r.u32() else {
            return self.send_err(&ErrorReply::malformed()).await;
        };
        let Some(state) = self.statements.get_mut(&id) else {
            let e = ErrorReply::new(
                1243,
                "HY000",
                format!("Unknown prepared statement handler ({id}) given to mysqld_stmt_execute"),
            );
            return self.send_err(&e).await;
        };
        let params = packets::execute_params(r.0, state);
        state.long_data.clear();
        let params: Vec<Value> = match params {
            Ok(p) => p,
            Err(e) => return self.send_err(&e).await,
        };
        let started = Instant::now();
        let done = self
            .call(move |s| s.execute_prepared(id, &params), RowFormat::Binary)
            .await?;
        self.shared
            .metrics
            .observe_statement(started, done.result.is_ok());
        self.send_output(done).await
    }

    /// COM_STMT_SEND_LONG_DATA: no reply, ever; bad packets are dropped.
    fn long_data(&mut self, body: &[u8]) {
        let mut r = packets::Reader(body);
        let (Some(id), Some(param)) = (r.u32(), r.u16()) else {
            return;
        };
        if let Some(state) = self.statements.get_mut(&id)
            && param < state.params
        {
            state
                .long_data
                .entry(param)
                .or_default()
                .extend_from_slice(r.0);
        }
    }

    async fn reset_statement(&mut self, body: &[u8]) -> Step {
        let id = packets::Reader(body).u32();
        match id.and_then(|id| self.statements.get_mut(&id)) {
            Some(state) => {
                state.long_data.clear();
                self.send_ok(0, 0, "").await
            }
            None => {
                let e = ErrorReply::new(
                    1243,
                    "HY000",
                    format!(
                        "Unknown prepared statement handler ({}) given to mysqld_stmt_reset",
                        id.unwrap_or(0)
                    ),
                );
                self.send_err(&e).await
            }
        }
    }

    /// Ends a statement's answer: an OK packet, the end of the result its
    /// rows were written for, or an error (after rows, too: the client
    /// reads it in place of the end).
    async fn send_output(&mut self, done: Done<duet_sql::Result<Output>>) -> Step {
        let result = match done.result {
            Ok(r) => r,
            Err(e) => return self.send_err(&ErrorReply::from(&e)).await,
        };
        match result {
            Output::Ok(s) => {
                let status = status_flags(done.status);
                let payload = packets::ok(
                    s.affected_rows,
                    s.last_insert_id,
                    status,
                    done.warnings,
                    &s.info,
                    false,
                );
                self.send(payload).await
            }
            Output::Streamed { .. } => self.send_end(true, done.warnings).await,
            // A session with a sink streams every result.
            Output::Rows(_) => {
                let e = ErrorReply::new(1105, "HY000", "a result was not streamed");
                self.send_err(&e).await
            }
        }
    }

    /// Ends a list of column definitions or rows: EOF, or with
    /// CLIENT_DEPRECATE_EOF an OK packet for a result set's end (and nothing
    /// after prepared-statement metadata).
    async fn send_end(&mut self, end_of_result: bool, warnings: u16) -> Step {
        let status = status_flags(self.status);
        if !self.deprecate_eof() {
            self.send(packets::eof(status, warnings)).await
        } else if end_of_result {
            self.send(packets::ok(0, 0, status, warnings, "", true))
                .await
        } else {
            Ok(())
        }
    }

    /// An OK packet with the session's state as of its last answer.
    async fn send_ok(&mut self, affected: u64, insert_id: u64, info: &str) -> Step {
        let payload = packets::ok(
            affected,
            insert_id,
            status_flags(self.status),
            0,
            info,
            false,
        );
        self.send(payload).await
    }

    async fn send_err(&mut self, e: &ErrorReply) -> Step {
        self.send(packets::err(e)).await
    }

    fn deprecate_eof(&self) -> bool {
        self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// Frames one payload into the output buffer, flushing when it is large.
    async fn send(&mut self, payload: Vec<u8>) -> Step {
        let mut src = payload.as_slice();
        if let Err(e) = self.codec.encode(&mut src, &mut self.output) {
            // Only an oversized payload can fail here; the client gets an error
            // instead, and the connection ends (as MySQL does).
            debug!(conn = self.id, error = ?e, "response packet not sent");
            let e = ErrorReply::new(
                1153,
                "08S01",
                "Got a packet bigger than 'max_allowed_packet' bytes",
            );
            let payload = packets::err(&e);
            self.codec
                .encode(&mut payload.as_slice(), &mut self.output)
                .map_err(codec_io)?;
            // The rest of the response cannot follow an ERR packet: hang up.
            self.flush().await?;
            return Err(Close::AfterError);
        }
        if self.output.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Step {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        Ok(())
    }

    /// Reads the next whole packet; `None` at end of stream.
    async fn read_packet(&mut self) -> Step<Option<Vec<u8>>> {
        // A packet split over several frames accumulates in `packet`.
        let mut packet = Vec::new();
        loop {
            match self.codec.decode(&mut self.input, &mut packet) {
                Ok(true) => return Ok(Some(packet)),
                Ok(false) => {}
                Err(PacketCodecError::PacketTooLarge) => {
                    self.codec.reset_seq_id();
                    let e = ErrorReply::new(
                        1153,
                        "08S01",
                        "Got a packet bigger than 'max_allowed_packet' bytes",
                    );
                    return self.fatal(e).await;
                }
                Err(e) => return Err(codec_io(e)),
            }
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Ok(None);
            }
        }
    }
}

fn codec_io(e: PacketCodecError) -> Close {
    match e {
        PacketCodecError::Io(e) => Close::Io(e),
        other => Close::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{other:?}"),
        )),
    }
}

fn status_flags(s: SessionStatus) -> StatusFlags {
    let mut flags = StatusFlags::empty();
    if s.autocommit {
        flags |= StatusFlags::SERVER_STATUS_AUTOCOMMIT;
    }
    if s.in_transaction {
        flags |= StatusFlags::SERVER_STATUS_IN_TRANS;
    }
    flags
}
