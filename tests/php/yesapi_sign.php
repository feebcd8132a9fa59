<?php
// The YesApi signature as its PHP SDK builds it: ksort, the values concatenated, the
// secret appended, strtoupper(md5()).

function yesapi_sign(array $params, string $secret): string {
    ksort($params);
    $joined = '';
    foreach ($params as $value) {
        $joined .= $value;
    }
    return strtoupper(md5($joined . $secret));
}
