// nginx JavaScript (njs) for tessera-introspect.conf: asks tessera's introspection
// endpoint (RFC 7662) about the request's bearer token and answers `auth_request`:
// 204 when the token is active (with its subject and scopes as response headers, for
// `auth_request_set`), 401 otherwise. The endpoint answers 200 for active and inactive
// tokens alike (RFC 7662), so the JSON body decides; `auth_request` alone only reads a
// status.

var crypto = require('crypto');

// RFC 6750 b64token characters: anything else is refused before asking.
var TOKEN = /^[A-Za-z0-9\-._~+\/]+=*$/;

function bearer(r) {
    var header = r.headersIn['Authorization'];
    if (!header) {
        return null;
    }
    var space = header.indexOf(' ');
    if (space < 0 || header.slice(0, space).toLowerCase() !== 'bearer') {
        return null;
    }
    var token = header.slice(space + 1).trim();
    if (token.length === 0 || token.length > 8192 || !TOKEN.test(token)) {
        return null;
    }
    return token;
}

function introspect(r) {
    var token = bearer(r);
    if (token === null) {
        r.return(401);
        return;
    }
    // The cache is keyed by the token's SHA-256, so no token is written to disk.
    var key = crypto.createHash('sha256').update(token).digest('hex');
    r.subrequest('/_tessera_introspect', {
        args: 'token=' + encodeURIComponent(token) + '&key=' + key,
    }).then(function (reply) {
        if (reply.status !== 200) {
            // The gateway's own key is refused (401), it is rate limited (429) or the
            // service is down (503): fail closed, and say so in the error log.
            r.error('tessera introspection answered ' + reply.status);
            r.return(reply.status === 401 ? 500 : 503);
            return;
        }
        var answer;
        try {
            answer = JSON.parse(reply.responseText);
        } catch (e) {
            r.error('tessera introspection answer is not JSON');
            r.return(503);
            return;
        }
        if (answer.active !== true) {
            r.return(401);
            return;
        }
        r.headersOut['X-Tessera-Subject'] = String(answer.sub || '');
        r.headersOut['X-Tessera-Scope'] = String(answer.scope || '');
        r.return(204);
    }).catch(function (e) {
        r.error('tessera introspection failed: ' + e);
        r.return(503);
    });
}

export default { introspect };
