// The gateway's own logic, in nginx's njs module (0.7.9, Debian 12's
// libnginx-mod-http-js): a key's shard ($kv_shard), the listing merged over
// the shards (GET /blobs) and the health of every shard and node
// (GET /health). The last two ask the shards with subrequests to internal
// locations of deploy/nginx.conf.template:
//   /_list/SHARD       that shard's GET /blobs (its read upstream: the
//                      primary, the replica when the primary does not answer)
//   /_health/NODE      that node's GET /health
// The shards' names are filled in by deploy/render-gateway.sh; the nodes come
// from the variable $kv_nodes ("NODE SHARD ROLE ADDR; ...") the template sets.

import crypto from 'crypto';

var PAGE = 1000; // the largest page a volume answers (limit=1..1000)

// A key's shard: twemproxy's ketama (nc_ketama.c with `hash: md5`), so that
// a key has the same shard over HTTP and over RESP. The ring holds 160 points
// a shard, from the MD5 of "NAME-i" (four little-endian words a digest), and
// depends on the shards' names only: never on their nodes, never on which is
// up. deploy/render-gateway.sh computes it (md5sum) and fills in the copy it
// writes beside nginx.conf: SHARDS in twemproxy's order, RING_AT the points
// in ascending order, RING_SHARD the index in SHARDS of each point's shard.
var SHARDS = @SHARDS_JSON@;
var RING_AT = @RING_AT@;
var RING_SHARD = @RING_SHARD@;

function md5(s) {
    return crypto.createHash('md5').update(s).digest('hex');
}

// the little-endian 32-bit word at the start of a hex digest
function word0(hex) {
    return parseInt(hex.substr(6, 2) + hex.substr(4, 2) + hex.substr(2, 2) + hex.substr(0, 2), 16);
}

function shardOfKey(key) {
    var h = word0(md5(key)), lo = 0, hi = RING_AT.length;
    while (lo < hi) {
        var mid = (lo + hi) >> 1;
        if (RING_AT[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SHARDS[RING_SHARD[hi === RING_AT.length ? 0 : hi]];
}

// $kv_shard: the shard of the key of /blobs/{key}, the key as the volume
// reads it (the path after /blobs/, percent-decoded, without the query);
// empty for other requests.
function shard(r) {
    var u = r.variables.request_uri, q = u.indexOf('?');
    if (q >= 0)
        u = u.substring(0, q);
    var at = u.indexOf('/blobs/');
    if (at < 0)
        return ''; // not a blob's request (an error page names no shard)
    u = u.substring(at + 7);
    try {
        u = decodeURIComponent(u);
    } catch (e) {
        // not UTF-8: the volume answers 400 whichever shard it is
    }
    return shardOfKey(u);
}

// Percent-encoding of a key as a volume writes X-Next-After: every byte of
// the UTF-8 but the unreserved ones (RFC 3986) as %XX, upper-case.
function encodeKey(key) {
    return encodeURIComponent(key).replace(/[!'()*]/g, function (c) {
        return '%' + c.charCodeAt(0).toString(16).toUpperCase();
    });
}

function error(r, status, message) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({error: message}) + '\n');
}

// The query string without the parameters named in `drop`, as a list of
// raw "name=value" parts.
function argsWithout(raw, drop) {
    return raw.split('&').filter(function (p) {
        return p !== '' && drop.indexOf(p.split('=')[0]) < 0;
    });
}

// One shard's page: {status, body, keys, next} (next: the shard's
// X-Next-After, undefined on its last page).
function fetchPage(r, shard, args) {
    return r.subrequest('/_list/' + shard, {args: args.join('&'), method: 'GET'})
        .then(function (reply) {
            var page = {shard: shard, status: reply.status, body: reply.responseText};
            if (reply.status === 200) {
                page.keys = JSON.parse(page.body);
                page.next = reply.headersOut['X-Next-After'];
            }
            return page;
        });
}

// A shard's failure as the answer: its own error when it gave one, else
// (its nodes unreachable) nginx's status with a JSON error naming it.
function shardError(r, page) {
    var body = page.body || '';
    if (page.status === 502 || page.status === 504) {
        error(r, page.status, 'gateway: listing: no node of ' + page.shard + ' answered');
    } else if (body.charAt(0) === '{') {
        r.headersOut['Content-Type'] = 'application/json';
        r.return(page.status, body);
    } else {
        error(r, page.status >= 400 ? page.status : 502,
              'listing: shard ' + page.shard + ' did not answer (' + page.status + ')');
    }
}

// GET /blobs?limit=N&...: each shard's first N keys of the range, merged;
// the first N of those are the page, X-Next-After when any key follows.
function listPage(r, shards, raw) {
    var limit = parseInt(r.args.limit, 10);
    var parts = argsWithout(raw, []);
    Promise.all(shards.map(function (s) { return fetchPage(r, s, parts); }))
        .then(function (pages) {
            var all = [], more = false, i;
            for (i = 0; i < pages.length; i++) {
                if (pages[i].status !== 200)
                    return shardError(r, pages[i]);
                all = all.concat(pages[i].keys);
                more = more || pages[i].next !== undefined;
            }
            all.sort(function (a, b) { return a < b ? -1 : a > b ? 1 : 0; });
            more = more || all.length > limit;
            var page = all.slice(0, limit);
            if (more && page.length > 0)
                r.headersOut['X-Next-After'] = encodeKey(page[page.length - 1]);
            r.headersOut['Content-Type'] = 'application/json';
            r.return(200, JSON.stringify(page));
        })
        .catch(function (e) { error(r, 500, 'listing: ' + e); });
}

// GET /blobs without limit: every key of the range, streamed, merged from
// each shard's pages of PAGE keys (the next one asked for when a shard's
// page is used up), so the gateway holds one page per shard.
async function listAll(r, shards, raw) {
    var base = argsWithout(raw, ['limit']);
    var rest = argsWithout(raw, ['limit', 'start', 'after']).concat(['limit=' + PAGE]);
    var first = base.concat(['limit=' + PAGE]);
    var pages = await Promise.all(shards.map(function (s) { return fetchPage(r, s, first); }));
    var i;
    for (i = 0; i < pages.length; i++) {
        if (pages[i].status !== 200)
            return shardError(r, pages[i]);
        pages[i].at = 0;
    }
    r.status = 200;
    r.headersOut['Content-Type'] = 'application/json';
    r.sendHeader();
    var out = '[', any = false, sent = 0;
    for (;;) {
        var best = -1;
        for (i = 0; i < pages.length; i++) {
            var p = pages[i];
            if (p.at === p.keys.length && p.next !== undefined) {
                var last = p.keys[p.keys.length - 1];
                var np = await fetchPage(r, p.shard, rest.concat(['after=' + encodeKey(last)]));
                if (np.status !== 200) {
                    // Too late for a status: the array stays unterminated,
                    // so the client sees a broken listing, never a short one.
                    r.error('listing: shard ' + p.shard + ' failed mid-listing: ' + np.status);
                    r.send(out);
                    r.finish();
                    return;
                }
                np.at = 0;
                pages[i] = p = np;
            }
            if (p.at < p.keys.length && (best < 0 || p.keys[p.at] < pages[best].keys[pages[best].at]))
                best = i;
        }
        if (best < 0)
            break;
        out += (any ? ',' : '') + JSON.stringify(pages[best].keys[pages[best].at++]);
        any = true;
        if (++sent % PAGE === 0) {
            r.send(out);
            out = '';
        }
    }
    r.send(out + ']');
    r.finish();
}

function list(r) {
    if (r.method !== 'GET' && r.method !== 'HEAD') {
        r.headersOut['Allow'] = 'GET, HEAD';
        return error(r, 405, 'Method not allowed');
    }
    var shards = SHARDS;
    var raw = r.variables.args || '';
    var hasLimit = argsWithout(raw, []).some(function (p) { return p.split('=')[0] === 'limit'; });
    if (hasLimit) {
        listPage(r, shards, raw);
    } else {
        listAll(r, shards, raw).catch(function (e) { error(r, 500, 'listing: ' + e); });
    }
}

// GET /health: each node's /health, each shard's state, and the worst.
//   healthy    every node answers
//   degraded   a replica does not answer (reads and writes still work)
//   read-only  the primary does not answer: reads from the replica, writes fail
//   down       no node of the shard answers: its keys fail
// 200 while every key can be read and written (healthy, degraded), else 503.
var RANK = {healthy: 0, degraded: 1, 'read-only': 2, down: 3};

function health(r) {
    var nodes = r.variables.kv_nodes.split(';').map(function (s) {
        var f = s.trim().split(' ');
        return {name: f[0], shard: f[1], role: f[2], addr: f[3]};
    }).filter(function (n) { return n.name; });
    Promise.all(nodes.map(function (n) {
        return r.subrequest('/_health/' + n.name).then(function (reply) {
            var h = null;
            try { h = JSON.parse(reply.responseText); } catch (e) { h = null; }
            n.status = reply.status === 200 && h && h.status === 'healthy' ? 'healthy' : 'down';
            if (h && h.role)
                n.reported_role = h.role;
            if (h && h.keys !== undefined)
                n.keys = h.keys;
            if (n.status !== 'healthy')
                n.error = h && h.error ? h.error : 'no answer (' + reply.status + ')';
            return n;
        });
    })).then(function () {
        var shards = {}, order = [], worst = 'healthy';
        nodes.forEach(function (n) {
            if (!shards[n.shard]) {
                shards[n.shard] = {name: n.shard, nodes: []};
                order.push(n.shard);
            }
            shards[n.shard].nodes.push(n);
        });
        var list = order.map(function (name) {
            var s = shards[name];
            var up = s.nodes.filter(function (n) { return n.status === 'healthy'; });
            var primaryUp = up.some(function (n) { return n.role === 'primary'; });
            s.status = up.length === s.nodes.length ? 'healthy'
                     : up.length === 0 ? 'down'
                     : primaryUp ? 'degraded' : 'read-only';
            if (RANK[s.status] > RANK[worst])
                worst = s.status;
            return s;
        });
        r.headersOut['Content-Type'] = 'application/json';
        r.return(RANK[worst] <= RANK.degraded ? 200 : 503,
                 JSON.stringify({status: worst, role: 'gateway', shards: list}) + '\n');
    }).catch(function (e) { error(r, 500, 'health: ' + e); });
}

export default {shard, list, health};
