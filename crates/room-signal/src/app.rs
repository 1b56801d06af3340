//! Apps and the hub. An `App` is a tenant: its config, its rooms and the
//! stream IDs claimed in it. The `Hub` holds every app and hands out sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::{AppConfig, Limits, SignalConfig};
use crate::error::{code, SignalError};
use crate::hooks::{AppHooks, HookKind, Hooks, NoHooks};
use crate::limiter::Limiter;
use crate::media::{MediaControl, MediaId, NoMedia};
use crate::outbox::{self, Inbox, Outbound, Outbox};
use crate::refusals::Refusals;
use crate::room::Room;
use crate::session::Session;
use crate::wire::User;

mod admin;
pub use admin::{PlayEntry, RoomSummary, StreamSummary};

/// A play of a stream ID, told when its publisher goes away.
struct PlayerRef {
    outbox: Outbox,
    play: MediaId,
    user: User,
}

/// A stream's publish: where it is listed and by which connection.
struct Published {
    room_id: Arc<str>,
    publisher: Outbox,
    publish: Option<MediaId>,
}

/// One stream ID of the app: its publish, if any, and its plays, which
/// outlive the publish (plays wait for the next publisher).
#[derive(Default)]
struct StreamEntry {
    published: Option<Published>,
    players: Vec<PlayerRef>,
}

pub struct App {
    pub config: AppConfig,
    pub limits: Arc<Limits>,
    pub media: Arc<dyn MediaControl>,
    /// Logins per second into this app's rooms (`1002071`).
    pub(crate) logins: Limiter,
    rooms: Mutex<HashMap<Arc<str>, Arc<Room>>>,
    /// Stream IDs published or played in this app (a published ID is
    /// unique per app, whatever the room).
    streams: Mutex<HashMap<Arc<str>, StreamEntry>>,
    /// Live sessions (signaling connections and WHIP/WHEP resources).
    sessions: AtomicUsize,
    /// Requests of this app refused by a resource limit.
    pub refusals: Refusals,
    /// Signaling requests answered, by op and result code.
    pub requests: crate::requests::RequestCounters,
    /// Where this app's events for its backend go.
    hooks: AppHooks,
}

impl App {
    fn new(
        config: AppConfig,
        limits: Arc<Limits>,
        media: Arc<dyn MediaControl>,
        hooks: Arc<dyn Hooks>,
    ) -> Self {
        App {
            hooks: AppHooks {
                app_id: config.app_id,
                sink: hooks,
            },
            logins: Limiter::per_second(limits.login_per_app_per_sec),
            config,
            limits,
            media,
            rooms: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            sessions: AtomicUsize::new(0),
            refusals: Refusals::default(),
            requests: Default::default(),
        }
    }

    /// Live sessions of this app.
    pub fn session_count(&self) -> usize {
        self.sessions.load(Ordering::Relaxed)
    }

    /// Called by `Session::drop`.
    pub(crate) fn session_ended(&self) {
        self.sessions.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn id(&self) -> u32 {
        self.config.app_id
    }

    /// The room `id`, created if it does not exist.
    pub(crate) fn room_for_join(&self, id: &str) -> Arc<Room> {
        let mut rooms = self.rooms.lock();
        if let Some(r) = rooms.get(id) {
            return r.clone();
        }
        let id: Arc<str> = Arc::from(id);
        let room = Arc::new(Room::new(
            id.clone(),
            self.limits.clone(),
            self.hooks.clone(),
        ));
        rooms.insert(id, room.clone());
        room
    }

    /// The room `id` if someone is in it.
    pub fn room(&self, id: &str) -> Option<Arc<Room>> {
        self.rooms.lock().get(id).cloned()
    }

    /// Forget `room` after its last member left (unless already replaced).
    pub(crate) fn drop_room(&self, room: &Arc<Room>) {
        let mut rooms = self.rooms.lock();
        if rooms.get(&room.id).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(&room.id);
        }
    }

    pub fn rooms(&self) -> Vec<Arc<Room>> {
        self.rooms.lock().values().cloned().collect()
    }

    /// The server removes `user_id` from `room_id` (admin API): the user's
    /// connection gets `KICKOUT 1002055`, its streams there end (reason 4).
    /// False if no such user is in the room.
    pub fn kick(&self, room_id: &str, user_id: &str) -> bool {
        self.kick_with(room_id, user_id, code::KICKED_BY_SERVER)
    }

    /// [`App::kick`] with the `KICKOUT` code to give.
    pub(crate) fn kick_with(&self, room_id: &str, user_id: &str, code: u32) -> bool {
        let Some(room) = self.room(room_id) else {
            return false;
        };
        let Some((streams, empty)) = room.kick(user_id, code) else {
            return false;
        };
        for s in &streams {
            self.end_stream(s);
        }
        if empty {
            self.drop_room(&room);
        }
        tracing::info!(
            app = self.id(),
            room = room_id,
            user = user_id,
            "kicked by the server"
        );
        true
    }

    /// Claim `stream_id` for a publish by `conn_id` listed in `room_id`;
    /// false if the ID is taken in this app.
    pub fn claim_stream(
        &self,
        stream_id: &Arc<str>,
        room_id: &Arc<str>,
        publisher: &Outbox,
    ) -> bool {
        let mut streams = self.streams.lock();
        let entry = streams.entry(stream_id.clone()).or_default();
        if entry.published.is_some() {
            return false;
        }
        entry.published = Some(Published {
            room_id: room_id.clone(),
            publisher: publisher.clone(),
            publish: None,
        });
        true
    }

    /// Record the media publish behind a claimed stream ID.
    pub fn set_publish_media(&self, stream_id: &str, media: MediaId) {
        if let Some(p) = self
            .streams
            .lock()
            .get_mut(stream_id)
            .and_then(|e| e.published.as_mut())
        {
            p.publish = Some(media);
        }
    }

    /// The stream stopped being published (any reason): free the ID, stop
    /// its media and tell every player, whatever room it plays from (the
    /// plays wait for the next publisher).
    pub fn end_stream(&self, stream_id: &str) {
        let taken = {
            let mut streams = self.streams.lock();
            Self::take_published(&mut streams, stream_id)
        };
        if let Some((published, players)) = taken {
            self.finish_end(stream_id, published, players);
        }
    }

    /// Take the publish of `stream_id` out of the map (the lock held), with
    /// the players to tell.
    fn take_published(
        streams: &mut HashMap<Arc<str>, StreamEntry>,
        stream_id: &str,
    ) -> Option<(Published, Vec<(Outbox, MediaId)>)> {
        let entry = streams.get_mut(stream_id)?;
        let published = entry.published.take()?;
        let players: Vec<(Outbox, MediaId)> = entry
            .players
            .iter()
            .map(|p| (p.outbox.clone(), p.play))
            .collect();
        if entry.players.is_empty() {
            streams.remove(stream_id);
        }
        Some((published, players))
    }

    /// Stop a taken publish's media and tell its players (they wait).
    fn finish_end(&self, stream_id: &str, published: Published, players: Vec<(Outbox, MediaId)>) {
        if let Some(media) = published.publish {
            self.media.stop(media);
        }
        let stream: Arc<str> = Arc::from(stream_id);
        for (outbox, play) in players {
            outbox.send(Outbound::StreamEnded {
                stream_id: stream.clone(),
                play,
            });
        }
    }

    /// The room a published stream is listed in, and its publisher's connection.
    pub fn stream_room(&self, stream_id: &str) -> Option<(Arc<str>, u64)> {
        self.streams
            .lock()
            .get(stream_id)?
            .published
            .as_ref()
            .map(|p| (p.room_id.clone(), p.publisher.conn_id()))
    }

    /// Register a play of `stream_id`, published or not; true if the
    /// stream is published now (else the play waits for its publisher).
    pub fn add_player(&self, stream_id: &str, outbox: &Outbox, play: MediaId, user: &User) -> bool {
        let mut streams = self.streams.lock();
        let entry = streams.entry(Arc::from(stream_id)).or_default();
        entry.players.push(PlayerRef {
            outbox: outbox.clone(),
            play,
            user: user.clone(),
        });
        entry.published.is_some()
    }

    /// Forget a play (stopped by its player, or its wait ran out).
    pub fn remove_player(&self, stream_id: &str, play: MediaId) {
        let mut streams = self.streams.lock();
        if let Some(e) = streams.get_mut(stream_id) {
            e.players.retain(|r| r.play != play);
            if e.players.is_empty() && e.published.is_none() {
                streams.remove(stream_id);
            }
        }
    }

    /// Tell the app's backend a play started or stopped (`room_id`: the
    /// room the play is bound to; `reason` for a stop).
    pub(crate) fn play_hook(
        &self,
        started: bool,
        room_id: &Arc<str>,
        user_id: Option<&Arc<str>>,
        stream_id: &Arc<str>,
        reason: Option<u32>,
    ) {
        let kind = if started {
            HookKind::PlayStarted
        } else {
            HookKind::PlayStopped
        };
        self.hooks
            .emit(kind, room_id, user_id, Some(stream_id), reason);
    }

    /// Streams published now, and plays (waiting or not) of any stream ID.
    pub fn stream_counts(&self) -> (usize, usize) {
        let (published, plays, _) = self.stream_states();
        (published, plays)
    }

    /// Streams published, plays, and plays of those waiting for a publisher.
    pub fn stream_states(&self) -> (usize, usize, usize) {
        let streams = self.streams.lock();
        let published = streams.values().filter(|e| e.published.is_some()).count();
        let plays = streams.values().map(|e| e.players.len()).sum();
        let waiting = streams
            .values()
            .filter(|e| e.published.is_none())
            .map(|e| e.players.len())
            .sum();
        (published, plays, waiting)
    }

    /// Stream IDs with a publish or a play (tests: back to zero).
    pub fn stream_entries(&self) -> usize {
        self.streams.lock().len()
    }
}

/// What [`Hub::stats`] counts, summed over apps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Signaling connections and WHIP/WHEP resources.
    pub sessions: usize,
    pub rooms: usize,
    /// Users in rooms (a user in two rooms counts twice).
    pub room_members: usize,
    /// Streams published.
    pub streams: usize,
    /// Plays, waiting or playing.
    pub plays: usize,
    /// Plays whose stream has no publisher now (waiting for one).
    pub plays_waiting: usize,
}

/// Every app of the server; the entry point of the control plane.
pub struct Hub {
    apps: HashMap<u32, Arc<App>>,
    limits: Arc<Limits>,
    next_conn: AtomicU64,
}

impl Hub {
    /// Build the hub; fails on duplicate app IDs or an app with `maxRooms` 0.
    pub fn new(config: SignalConfig) -> Result<Self, String> {
        Self::with_media(config, Arc::new(NoMedia))
    }

    /// Build the hub with a media plane.
    pub fn with_media(config: SignalConfig, media: Arc<dyn MediaControl>) -> Result<Self, String> {
        Self::with_hooks(config, media, Arc::new(NoHooks))
    }

    /// Build the hub with a media plane and a sink for the apps' events.
    pub fn with_hooks(
        config: SignalConfig,
        media: Arc<dyn MediaControl>,
        hooks: Arc<dyn Hooks>,
    ) -> Result<Self, String> {
        let limits = Arc::new(config.limits);
        let mut apps = HashMap::new();
        for app in config.apps {
            if app.max_rooms == 0 {
                return Err(format!("app {}: maxRooms must be at least 1", app.app_id));
            }
            if app.secret.is_empty() {
                return Err(format!("app {}: secret is empty", app.app_id));
            }
            let id = app.app_id;
            if apps
                .insert(
                    id,
                    Arc::new(App::new(app, limits.clone(), media.clone(), hooks.clone())),
                )
                .is_some()
            {
                return Err(format!("app {id} is configured twice"));
            }
        }
        Ok(Hub {
            apps,
            limits,
            next_conn: AtomicU64::new(1),
        })
    }

    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// Totals over every app, for `/metrics` (O(rooms + streams)).
    pub fn stats(&self) -> HubStats {
        let mut s = HubStats::default();
        for app in self.apps.values() {
            s.sessions += app.session_count();
            for room in app.rooms() {
                let (members, _) = room.counts();
                s.rooms += 1;
                s.room_members += members;
            }
            let (published, plays, waiting) = app.stream_states();
            s.streams += published;
            s.plays += plays;
            s.plays_waiting += waiting;
        }
        s
    }

    /// Refusals by resource limits of `app_id` (see [`Refusals`]).
    pub fn refusals(&self, app_id: u32) -> Vec<(u32, u64)> {
        self.apps
            .get(&app_id)
            .map(|a| a.refusals.snapshot())
            .unwrap_or_default()
    }

    /// Every configured app's ID.
    pub fn app_ids(&self) -> Vec<u32> {
        self.apps.keys().copied().collect()
    }

    pub fn app(&self, app_id: u32) -> Option<Arc<App>> {
        self.apps.get(&app_id).cloned()
    }

    /// A new session for a connection to `app`, and the inbox its task
    /// drains; `1001005` when the app has `limits.maxSessionsPerApp` already.
    pub fn try_connect(&self, app: Arc<App>) -> Result<(Session, Inbox), SignalError> {
        let max = self.limits.max_sessions_per_app;
        if app.sessions.fetch_add(1, Ordering::Relaxed) >= max {
            app.sessions.fetch_sub(1, Ordering::Relaxed);
            app.refusals.count(code::APP_SESSION_LIMIT);
            return Err(SignalError::new(
                code::APP_SESSION_LIMIT,
                format!("the app has {max} sessions already (limits.maxSessionsPerApp)"),
            ));
        }
        Ok(self.session(app))
    }

    /// A new session for `app` whatever the session limit (tests, tools).
    pub fn connect(&self, app: Arc<App>) -> (Session, Inbox) {
        app.sessions.fetch_add(1, Ordering::Relaxed);
        self.session(app)
    }

    fn session(&self, app: Arc<App>) -> (Session, Inbox) {
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (outbox, inbox) = outbox::channel(conn_id, self.limits.outbox_capacity);
        (Session::new(conn_id, app, outbox), inbox)
    }

    /// Send `roomOnlineUserCountUpdate` to every room of every app.
    pub fn send_online_counts(&self) {
        for app in self.apps.values() {
            for room in app.rooms() {
                room.send_online_count();
            }
        }
    }
}
