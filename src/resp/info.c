/*
 * info.c - INFO: the sections server, clients, memory, persistence, stats,
 * replication, cpu, commandstats, latencystats and keyspace, with the field
 * names Redis uses and that tools read (redis_version, role,
 * connected_clients, db0:keys=...), plus the engine's own figures where
 * Redis has none.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "figures.h"
#include "repl.h"
#include "server.h"

#define REDIS_COMPAT_VERSION "7.0.0"

static void add(struct growbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct growbuf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        growbuf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void section_server(struct growbuf *b, struct resp_server *srv)
{
    struct utsname u;
    if (uname(&u) != 0)
        memset(&u, 0, sizeof(u));
    uint64_t up = vs_app_uptime_secs(srv->app);
    add(b,
        "# Server\r\nredis_version:%s\r\nredis_mode:standalone\r\nkvstore_version:%s\r\n"
        "os:%s %s %s\r\narch_bits:%zu\r\nmultiplexing_api:libuv (epoll)\r\nio_threads_active:%u\r\n"
        "process_id:%ld\r\nrun_id:%s\r\ntcp_port:%u\r\nhttp_port:%u\r\nuptime_in_seconds:%llu\r\n"
        "uptime_in_days:%llu\r\nvolume_id:%s\r\n\r\n",
        REDIS_COMPAT_VERSION, KV_VERSION_STRING, u.sysname, u.release, u.machine,
        sizeof(void *) * 8, srv->n_loops, (long)getpid(), srv->run_id, srv->port, srv->cfg->port,
        (unsigned long long)up, (unsigned long long)(up / 86400u), blob_volume_id(srv->app->store));
}

static void section_clients(struct growbuf *b, struct resp_server *srv)
{
    add(b,
        "# Clients\r\nconnected_clients:%llu\r\nmaxclients:%u\r\nblocked_clients:0\r\n"
        "tracking_clients:0\r\nhttp_connections:%llu\r\n\r\n",
        (unsigned long long)vs_counter_load(&srv->app->resp.connections), srv->cfg->max_connections,
        (unsigned long long)vs_counter_load(&srv->app->counters.connections));
}

/* The number of kB after name in a /proc/self/status line, in bytes. */
static bool status_kb(const char *line, const char *name, uint64_t *bytes)
{
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0)
        return false;
    *bytes = strtoull(line + n, NULL, 10) * 1024u;
    return true;
}

/* Resident memory of the process: total and anonymous, from
 * /proc/self/status (VmRSS, RssAnon), in bytes. */
static void resident(uint64_t *rss, uint64_t *anon)
{
    *rss = *anon = 0;
    FILE *f = fopen("/proc/self/status", "re");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (!status_kb(line, "VmRSS:", rss))
            status_kb(line, "RssAnon:", anon);
    }
    fclose(f);
}

static void section_memory(struct growbuf *b, const kv_stats *st)
{
    uint64_t rss = 0, anon = 0;
    resident(&rss, &anon);
    add(b,
        "# Memory\r\nused_memory:%llu\r\nused_memory_rss:%llu\r\nused_memory_index:%llu\r\n"
        "maxmemory:0\r\nmaxmemory_policy:noeviction\r\n\r\n",
        (unsigned long long)anon, (unsigned long long)rss, (unsigned long long)st->index_bytes);
}

static void section_persistence(struct growbuf *b, struct resp_server *srv, const kv_stats *st)
{
    add(b,
        "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:%llu\r\n"
        "rdb_bgsave_in_progress:%d\r\nrdb_last_save_time:%llu\r\nrdb_last_bgsave_status:%s\r\n"
        "aof_enabled:1\r\naof_rewrite_in_progress:%d\r\naof_last_bgrewrite_status:%s\r\n"
        "aof_last_write_status:%s\r\nsync_mode:%s\r\n\r\n",
        (unsigned long long)atomic_load(&srv->changes_since_save),
        atomic_load(&srv->bgsave_running) ? 1 : 0,
        (unsigned long long)atomic_load(&srv->last_save_unix),
        atomic_load(&srv->last_save_ok) ? "ok" : "err", atomic_load(&srv->rewrite_running) ? 1 : 0,
        atomic_load(&srv->last_rewrite_ok) ? "ok" : "err", st->read_only ? "err" : "ok",
        config_sync_mode_name(srv->cfg->sync_mode));
}

static void section_stats(struct growbuf *b, struct resp_server *srv)
{
    struct vs_resp_counters *r = &srv->app->resp;
    struct vs_cmd_total total;
    vs_cmd_sum_all(&srv->app->resp_commands, &total);
    add(b,
        "# Stats\r\ntotal_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
        "instantaneous_ops_per_sec:%llu\r\ntotal_net_input_bytes:%llu\r\n"
        "total_net_output_bytes:%llu\r\nrejected_connections:%llu\r\nexpired_keys:0\r\n"
        "evicted_keys:0\r\nkeyspace_hits:%llu\r\nkeyspace_misses:%llu\r\n"
        "total_error_replies:%llu\r\nprotocol_errors:%llu\r\n\r\n",
        (unsigned long long)vs_counter_load(&r->connections_total), (unsigned long long)total.calls,
        (unsigned long long)vs_counter_load(&r->ops_per_sec),
        (unsigned long long)vs_counter_load(&r->bytes_received),
        (unsigned long long)vs_counter_load(&r->bytes_sent),
        (unsigned long long)vs_counter_load(&r->rejected),
        (unsigned long long)vs_counter_load(&r->keyspace_hits),
        (unsigned long long)vs_counter_load(&r->keyspace_misses), (unsigned long long)total.failed,
        (unsigned long long)vs_counter_load(&r->protocol_errors));
}

/* Redis's fields where they mean the same (role, master_host,
 * master_link_status, connected_slaves, slaveN), then this server's own:
 * the history id, positions as segment:offset, lag and acknowledgements,
 * as /metrics gives them. */
static void section_replication(struct growbuf *b, struct resp_server *srv)
{
    struct repl *rp = srv->app->repl;
    if (rp == NULL) {
        add(b,
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_replid:%s\r\n"
            "master_repl_offset:0\r\n\r\n",
            srv->run_id);
        return;
    }
    struct repl_figures f;
    repl_figures(rp, &f);
    add(b, "# Replication\r\nrole:%s\r\n", f.replica ? "slave" : "master");
    if (f.replica) {
        const char *colon = strrchr(f.primary, ':');
        int host_len = colon ? (int)(colon - f.primary) : (int)strlen(f.primary);
        add(b,
            "master_host:%.*s\r\nmaster_port:%s\r\nmaster_link_status:%s\r\n"
            "master_sync_in_progress:%d\r\nslave_read_only:1\r\nlag_bytes:%llu\r\n"
            "lag_ms:%llu\r\n",
            host_len, f.primary, colon ? colon + 1 : "", f.connected ? "up" : "down",
            f.resyncing ? 1 : 0, (unsigned long long)f.lag_bytes, (unsigned long long)f.lag_ms);
    }
    add(b, "connected_slaves:%zu\r\n", f.nreplicas);
    for (size_t i = 0; i < f.nreplicas; i++) {
        const struct repl_replica_figures *p = &f.replicas[i];
        add(b, "slave%zu:id=%s,position=%llu:%llu,lag_bytes=%llu,lag_ms=%llu\r\n", i, p->id,
            (unsigned long long)p->acked.seg, (unsigned long long)p->acked.off,
            (unsigned long long)p->lag_bytes, (unsigned long long)p->lag_ms);
    }
    add(b,
        "master_replid:%s\r\nposition:%llu:%llu\r\nmin_replica_acks:%u\r\n"
        "acks_waited:%llu\r\nacks_timed_out:%llu\r\nfull_resyncs:%llu\r\n\r\n",
        f.history[0] ? f.history : srv->run_id, (unsigned long long)f.position.seg,
        (unsigned long long)f.position.off, f.min_acks, (unsigned long long)f.acks_waited,
        (unsigned long long)f.acks_timed_out, (unsigned long long)f.full_resyncs);
}

static void section_cpu(struct growbuf *b)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        memset(&ru, 0, sizeof(ru));
    add(b, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n\r\n",
        (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, (long)ru.ru_utime.tv_sec,
        (long)ru.ru_utime.tv_usec);
}

static void section_commandstats(struct growbuf *b, struct resp_server *srv)
{
    const struct vs_cmd_table *t = &srv->app->resp_commands;
    add(b, "# Commandstats\r\n");
    for (size_t i = 0; i < t->n_names; i++) {
        struct vs_cmd_total ct;
        vs_cmd_sum(t, i, &ct);
        if (ct.calls == 0)
            continue;
        add(b,
            "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=0,"
            "failed_calls=%llu\r\n",
            t->names[i], (unsigned long long)ct.calls, (unsigned long long)ct.usec,
            (double)ct.usec / (double)ct.calls, (unsigned long long)ct.failed);
    }
    add(b, "\r\n");
}

static void section_latencystats(struct growbuf *b, struct resp_server *srv)
{
    const struct vs_cmd_table *t = &srv->app->resp_commands;
    add(b, "# Latencystats\r\n");
    for (size_t i = 0; i < t->n_names; i++) {
        struct vs_cmd_total ct;
        vs_cmd_sum(t, i, &ct);
        if (ct.calls == 0)
            continue;
        add(b, "latency_percentiles_usec_%s:p50=%llu,p99=%llu,p99.9=%llu\r\n", t->names[i],
            (unsigned long long)vs_cmd_percentile(&ct, 0.50),
            (unsigned long long)vs_cmd_percentile(&ct, 0.99),
            (unsigned long long)vs_cmd_percentile(&ct, 0.999));
    }
    add(b, "\r\n");
}

/* Every figure of the engine (kv_stats), by its field name: what
 * `kvstore --connect` reads for its stats command. */
static void section_kvstore(struct growbuf *b, const kv_stats *st)
{
    add(b,
        "# Kvstore\r\nkeys:%llu\r\nsegments:%llu\r\ndisk_bytes:%llu\r\nlive_bytes:%llu\r\n"
        "dead_bytes:%llu\r\nactive_segment_id:%llu\r\noldest_segment_id:%llu\r\n"
        "index_bytes:%llu\r\nbloom_bytes:%llu\r\nbloom_capacity:%llu\r\nbloom_negatives:%llu\r\n"
        "bloom_false_positives:%llu\r\nchecksum_errors:%llu\r\ntorn_bytes_truncated:%llu\r\n",
        (unsigned long long)st->keys, (unsigned long long)st->segments,
        (unsigned long long)st->disk_bytes, (unsigned long long)st->live_bytes,
        (unsigned long long)st->dead_bytes, (unsigned long long)st->active_segment_id,
        (unsigned long long)st->oldest_segment_id, (unsigned long long)st->index_bytes,
        (unsigned long long)st->bloom_bytes, (unsigned long long)st->bloom_capacity,
        (unsigned long long)st->bloom_negatives, (unsigned long long)st->bloom_false_positives,
        (unsigned long long)st->checksum_errors, (unsigned long long)st->torn_bytes_truncated);
    add(b,
        "fsyncs:%llu\r\nputs:%llu\r\ndeletes:%llu\r\ngets:%llu\r\nrecords_replayed:%llu\r\n"
        "compactions:%llu\r\ncompaction_bytes_read:%llu\r\ncompaction_bytes_written:%llu\r\n"
        "compaction_bytes_reclaimed:%llu\r\nlast_compaction_ms:%llu\r\nsnapshot_loaded:%d\r\n"
        "read_only:%d\r\n\r\n",
        (unsigned long long)st->fsyncs, (unsigned long long)st->puts,
        (unsigned long long)st->deletes, (unsigned long long)st->gets,
        (unsigned long long)st->records_replayed, (unsigned long long)st->compactions,
        (unsigned long long)st->compaction_bytes_read,
        (unsigned long long)st->compaction_bytes_written,
        (unsigned long long)st->compaction_bytes_reclaimed,
        (unsigned long long)st->last_compaction_ms, st->snapshot_loaded ? 1 : 0,
        st->read_only ? 1 : 0);
}

static void section_keyspace(struct growbuf *b, const kv_stats *st)
{
    add(b, "# Keyspace\r\n");
    if (st->keys > 0)
        add(b, "db0:keys=%llu,expires=%llu,avg_ttl=0\r\n", (unsigned long long)st->keys,
            (unsigned long long)st->expiring_keys);
    add(b, "\r\n");
}

enum {
    S_SERVER = 1 << 0,
    S_CLIENTS = 1 << 1,
    S_MEMORY = 1 << 2,
    S_PERSISTENCE = 1 << 3,
    S_STATS = 1 << 4,
    S_REPLICATION = 1 << 5,
    S_CPU = 1 << 6,
    S_COMMANDSTATS = 1 << 7,
    S_LATENCYSTATS = 1 << 8,
    S_KEYSPACE = 1 << 9,
    S_KVSTORE = 1 << 10,
};

#define S_DEFAULT                                                                                  \
    (S_SERVER | S_CLIENTS | S_MEMORY | S_PERSISTENCE | S_STATS | S_REPLICATION | S_CPU | S_KEYSPACE)
#define S_ALL (S_DEFAULT | S_COMMANDSTATS | S_LATENCYSTATS | S_KVSTORE)

static unsigned section_bit(const char *s, size_t len)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"server", S_SERVER},
                 {"clients", S_CLIENTS},
                 {"memory", S_MEMORY},
                 {"persistence", S_PERSISTENCE},
                 {"stats", S_STATS},
                 {"replication", S_REPLICATION},
                 {"cpu", S_CPU},
                 {"commandstats", S_COMMANDSTATS},
                 {"latencystats", S_LATENCYSTATS},
                 {"keyspace", S_KEYSPACE},
                 {"kvstore", S_KVSTORE},
                 {"default", S_DEFAULT},
                 {"all", S_ALL},
                 {"everything", S_ALL}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == len && strncasecmp(names[i].name, s, len) == 0)
            return names[i].bit;
    return 0;
}

void resp_info(struct resp_ctx *c)
{
    struct resp_server *srv = c->srv;
    unsigned want = c->argc > 1 ? 0 : S_DEFAULT;
    for (size_t i = 1; i < c->argc; i++)
        want |= section_bit(c->argv[i], c->argl[i]);
    kv_stats st;
    int rc = kv_get_stats(blob_kv(srv->app->store), &st);
    if (rc != 0) {
        resp_reply_kv_error(c->out, rc);
        return;
    }
    struct growbuf b = {0};
    if (want & S_SERVER)
        section_server(&b, srv);
    if (want & S_CLIENTS)
        section_clients(&b, srv);
    if (want & S_MEMORY)
        section_memory(&b, &st);
    if (want & S_PERSISTENCE)
        section_persistence(&b, srv, &st);
    if (want & S_STATS)
        section_stats(&b, srv);
    if (want & S_REPLICATION)
        section_replication(&b, srv);
    if (want & S_CPU)
        section_cpu(&b);
    if (want & S_COMMANDSTATS)
        section_commandstats(&b, srv);
    if (want & S_LATENCYSTATS)
        section_latencystats(&b, srv);
    if (want & S_KVSTORE)
        section_kvstore(&b, &st);
    if (want & S_KEYSPACE)
        section_keyspace(&b, &st);
    /* No blank line at the end, as Redis. */
    if (b.len >= 2)
        b.len -= 2;
    resp_verbatim(c->out, c->proto, b.data ? b.data : "", b.len);
    growbuf_free(&b);
}

void cmd_info(struct resp_ctx *c)
{
    resp_info(c);
}
