<?php
// A YesApi PHP client as the SDK docs write it: ksort, concatenate values, append the
// secret, strtoupper(md5()); then verify _auth with json_encode($rs['data'], JSON_UNESCAPED_UNICODE).
// Usage: php client.php BASE_URL APP_KEY APP_SECRET CASES_JSON  → prints one JSON line per case.

[$_, $base, $appKey, $secret, $casesJson] = $argv;

require_once __DIR__ . '/yesapi_sign.php';

foreach (json_decode($casesJson, true) as $case) {
    $params = $case['params'];
    $params['app_key'] = $appKey;
    if (!empty($case['sign'])) {
        $params['sign'] = yesapi_sign($params, $secret);
    }
    $url = $base . $case['path'] . '?' . http_build_query($params);
    $body = file_get_contents($url);
    $rs = json_decode($body, true);
    $expected = md5(json_encode($rs['data'], JSON_UNESCAPED_UNICODE) . $rs['_t'] . $secret);
    echo json_encode([
        'ret' => $rs['ret'],
        'err_code' => $rs['data']['err_code'] ?? null,
        'err_msg' => $rs['data']['err_msg'] ?? null,
        'img_len' => strlen($rs['data']['img'] ?? ''),
        'auth_ok' => isset($rs['_auth']) && hash_equals($expected, $rs['_auth']),
    ], JSON_UNESCAPED_UNICODE), "\n";
}
