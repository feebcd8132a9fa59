<?php
// YesApi's PHP SDK (YesApiPHPSDK::request, and OkayApiClient::request, the same code) as it
// reaches the wire: the URL is rtrim(HOST . '/') . '/?s=' . $service (rtrim without a
// character list strips whitespace only, so the slash stays: "//?s=", or "///?s=" for a
// host written with a trailing slash); `sign` is dropped, `s` and `app_key` are added, the
// parameters are signed (ksort, values concatenated, secret appended, strtoupper(md5()))
// and POSTed as a PHP array through curl, that is multipart/form-data; the answer is read
// with json_decode($body, true). Written for the tests from that description.
//
// Usage: php yesapi_sdk.php HOST APP_KEY APP_SECRET CALLS_JSON
//   CALLS_JSON: [{"service": "...", "params": {...}}, ...]
// Prints one JSON line per call: what json_decode gave the SDK's caller ("rs"), whether
// `_auth` verifies with PHP's own json_encode of that array's `data` ("auth_ok") and of
// `data` decoded as objects instead ("auth_ok_objects": an empty `{}` stays `{}`, which as
// an array re-encodes as `[]`), the raw body (base64) and the request head curl sent.

if (!function_exists('curl_init')) {
    fwrite(STDERR, "the PHP curl extension is not loaded (apt-get install php-curl)\n");
    exit(3);
}

[$_, $host, $appKey, $appSecret, $callsJson] = $argv;

require_once __DIR__ . '/yesapi_sign.php';

function auth_holds($envelope, $data, string $secret): ?bool {
    if (!isset($envelope['_auth'])) {
        return null;
    }
    $expected = md5(json_encode($data, JSON_UNESCAPED_UNICODE) . $envelope['_t'] . $secret);
    return hash_equals($expected, $envelope['_auth']);
}

function sdk_call(string $host, string $appKey, string $appSecret, string $service, array $params): array {
    $url = rtrim($host . '/') . '/?s=' . $service;
    unset($params['sign']);
    $params['s'] = $service;
    $params['app_key'] = $appKey;
    $params['sign'] = yesapi_sign($params, $appSecret);

    $ch = curl_init();
    curl_setopt($ch, CURLOPT_URL, $url);
    curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
    curl_setopt($ch, CURLOPT_HEADER, 0);
    curl_setopt($ch, CURLOPT_CONNECTTIMEOUT_MS, 3000);
    curl_setopt($ch, CURLINFO_HEADER_OUT, true);  // only records what was sent
    curl_setopt($ch, CURLOPT_POST, 1);
    curl_setopt($ch, CURLOPT_POSTFIELDS, $params);
    $body = curl_exec($ch);
    $head = curl_getinfo($ch, CURLINFO_HEADER_OUT);
    $status = curl_getinfo($ch, CURLINFO_HTTP_CODE);
    curl_close($ch);
    return [$body, $head, $status];
}

foreach (json_decode($callsJson, true) as $call) {
    [$body, $head, $status] = sdk_call($host, $appKey, $appSecret, $call['service'], $call['params']);
    $rs = json_decode($body, true);
    $objects = json_decode($body);
    echo json_encode([
        'rs' => $rs,
        'auth_ok' => is_array($rs) ? auth_holds($rs, $rs['data'], $appSecret) : null,
        'auth_ok_objects' => is_object($objects)
            ? auth_holds((array) $objects, $objects->data, $appSecret) : null,
        'status' => $status,
        'head' => $head,
        'body' => base64_encode((string) $body),
    ], JSON_UNESCAPED_UNICODE), "\n";
}
