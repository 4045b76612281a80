<?php
/**
 * cdrate provisioning ("server") module for WHMCS.
 *
 * Each WHMCS service of a product using this module is one cdrate billing
 * account, `whmcs-<serviceid>`, created, suspended, unsuspended, terminated
 * and re-planned through cdrate's accounts API (/v1/accounts/…). A
 * suspended account's calls are still recorded and rated by cdrate (nothing
 * a PBX sends is lost); they are flagged on the rated call.
 *
 * Server record: hostname (and port) of cdrate, "Secure" for https, and a
 * cdrate API token with scope `admin` (`cdrate token create --scope admin`)
 * in the password or access hash field.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

function cdrate_MetaData()
{
    return [
        'DisplayName' => 'cdrate VoIP rating',
        'APIVersion' => '1.1',
        'RequiresServer' => true,
        'DefaultNonSSLPort' => '8080',
        'DefaultSSLPort' => '443',
        'ServiceSingleSignOnLabel' => false,
        'AdminSingleSignOnLabel' => false,
    ];
}

function cdrate_ConfigOptions()
{
    return [
        'Plan' => ['Type' => 'text', 'Size' => '25', 'Description' => 'cdrate tariff plan of outbound calls'],
        'Country code' => ['Type' => 'text', 'Size' => '4', 'Default' => '1', 'Description' => 'E.164 country code of the customer'],
        'National prefix' => ['Type' => 'text', 'Size' => '4', 'Default' => '1'],
        'International prefix' => ['Type' => 'text', 'Size' => '4', 'Default' => '011'],
        'Billing mode' => ['Type' => 'dropdown', 'Options' => 'pull,push,none', 'Default' => 'pull',
            'Description' => 'pull: the cdrate hook adds usage to renewal invoices; push: cdrate adds billable items'],
        'Identity source' => ['Type' => 'dropdown', 'Options' => 'freeswitch,twilio,zadarma,fritzbox,generic', 'Default' => 'freeswitch',
            'Description' => 'Which source reports this customer\'s calls; the service domain (or username) is its account key'],
        'Credit limit' => ['Type' => 'text', 'Size' => '10', 'Description' => 'Usage alerts at 80% and 100%; empty for none'],
    ];
}

/** The cdrate account id of a service. */
function cdrate_account_id(array $params)
{
    return 'whmcs-' . (int) ($params['serviceid'] ?? 0);
}

function cdrate_token(array $params)
{
    $token = (string) ($params['serverpassword'] ?? '');
    return $token !== '' ? $token : (string) ($params['serveraccesshash'] ?? '');
}

/**
 * One call to cdrate's API: [HTTP status, decoded JSON or raw text].
 * Throws when cdrate cannot be reached.
 */
function cdrate_api(array $params, $method, $path, $body = null, $accept = 'application/json')
{
    $host = (string) ($params['serverhostname'] ?? '') ?: (string) ($params['serverip'] ?? '');
    if ($host === '') {
        throw new RuntimeException('no cdrate server is assigned to this product');
    }
    $scheme = !empty($params['serversecure']) ? 'https' : 'http';
    $port = (string) ($params['serverport'] ?? '');
    $url = $scheme . '://' . $host . ($port !== '' ? ':' . $port : '') . $path;
    $headers = ['Accept: ' . $accept, 'Authorization: Bearer ' . cdrate_token($params)];
    $ch = curl_init($url);
    curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
    curl_setopt($ch, CURLOPT_CONNECTTIMEOUT, 5);
    curl_setopt($ch, CURLOPT_TIMEOUT, 20);
    curl_setopt($ch, CURLOPT_CUSTOMREQUEST, $method);
    if ($body !== null) {
        $headers[] = 'Content-Type: application/json';
        curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($body));
    }
    curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
    $raw = curl_exec($ch);
    $status = $raw === false ? 0 : (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    $error = curl_error($ch);
    curl_close($ch);
    if ($raw === false) {
        throw new RuntimeException('cdrate unreachable: ' . $error);
    }
    logModuleCall('cdrate', $method . ' ' . $path, $body === null ? '' : json_encode($body), $raw, '', [cdrate_token($params)]);
    $decoded = json_decode($raw, true);
    return [$status, is_array($decoded) ? $decoded : $raw];
}

/** 'success' for a 2xx, else cdrate's `message` (with its code). */
function cdrate_result(array $answer)
{
    list($status, $body) = $answer;
    if ($status >= 200 && $status < 300) {
        return 'success';
    }
    if (is_array($body) && isset($body['message'])) {
        return 'cdrate: ' . $body['message'] . ' (' . ($body['code'] ?? $status) . ')';
    }
    return 'cdrate answered HTTP ' . $status;
}

/** Runs a module function body, turning any exception into its message. */
function cdrate_guard($action, array $params, callable $body)
{
    try {
        return $body();
    } catch (\Throwable $e) {
        logModuleCall('cdrate', $action, $params['serviceid'] ?? '', $e->getMessage(), $e->getTraceAsString(), [cdrate_token($params)]);
        return $e->getMessage();
    }
}

function cdrate_TestConnection(array $params)
{
    try {
        // A valid token gets 404 for an account that cannot exist.
        list($status, $body) = cdrate_api($params, 'GET', '/v1/accounts/__cdrate_test__');
        if ($status === 404) {
            return ['success' => true, 'error' => ''];
        }
        $message = is_array($body) ? ($body['message'] ?? '') : '';
        return ['success' => false, 'error' => 'cdrate answered HTTP ' . $status . ($message !== '' ? ': ' . $message : '')];
    } catch (\Throwable $e) {
        return ['success' => false, 'error' => $e->getMessage()];
    }
}

function cdrate_CreateAccount(array $params)
{
    return cdrate_guard('CreateAccount', $params, function () use ($params) {
        $currency = $params['clientsdetails']['currency_code'] ?? null;
        if ($currency === null) {
            $client = localAPI('GetClientsDetails', ['clientid' => (int) ($params['userid'] ?? 0)]);
            $currency = $client['client']['currency_code'] ?? ($client['currency_code'] ?? null);
        }
        if (!$currency) {
            return 'cannot tell the client\'s currency';
        }
        $key = (string) ($params['domain'] ?? '') ?: (string) ($params['username'] ?? '');
        $body = [
            'plan' => (string) ($params['configoption1'] ?? ''),
            'currency' => $currency,
            'country_code' => (string) ($params['configoption2'] ?? '1'),
            'national_prefix' => (string) ($params['configoption3'] ?? ''),
            'international_prefix' => (string) ($params['configoption4'] ?? ''),
            'billing' => (string) ($params['configoption5'] ?? '') ?: 'pull',
            'whmcs_client_id' => (int) ($params['userid'] ?? 0),
            'whmcs_service_id' => (int) ($params['serviceid'] ?? 0),
        ];
        // Empty prefixes are left to cdrate's defaults.
        $body = array_filter($body, function ($v) {
            return $v !== '';
        });
        if ($key !== '') {
            $body['identities'] = [['source' => (string) ($params['configoption6'] ?? '') ?: 'freeswitch', 'account_key' => $key]];
        }
        if ((string) ($params['configoption7'] ?? '') !== '') {
            $body['credit_limit'] = (string) $params['configoption7'];
        }
        return cdrate_result(cdrate_api($params, 'PUT', '/v1/accounts/' . rawurlencode(cdrate_account_id($params)), $body));
    });
}

function cdrate_status_change(array $params, $action, $reason = null)
{
    return cdrate_guard(ucfirst($action) . 'Account', $params, function () use ($params, $action, $reason) {
        $path = '/v1/accounts/' . rawurlencode(cdrate_account_id($params)) . '/' . $action;
        return cdrate_result(cdrate_api($params, 'POST', $path, $reason === null ? null : ['reason' => $reason]));
    });
}

function cdrate_SuspendAccount(array $params)
{
    // WHMCS's suspend reason key is [unconfirmed]; both spellings are tried.
    $reason = (string) ($params['suspendreason'] ?? ($params['suspend_reason'] ?? ''));
    return cdrate_status_change($params, 'suspend', $reason);
}

function cdrate_UnsuspendAccount(array $params)
{
    return cdrate_status_change($params, 'unsuspend');
}

function cdrate_TerminateAccount(array $params)
{
    return cdrate_status_change($params, 'terminate');
}

function cdrate_ChangePackage(array $params)
{
    return cdrate_guard('ChangePackage', $params, function () use ($params) {
        // cdrate keeps the old plan for calls answered before now.
        $body = ['plan' => (string) ($params['configoption1'] ?? '')];
        if ((string) ($params['configoption7'] ?? '') !== '') {
            $body['credit_limit'] = (string) $params['configoption7'];
        }
        return cdrate_result(cdrate_api($params, 'PUT', '/v1/accounts/' . rawurlencode(cdrate_account_id($params)), $body));
    });
}

/** The current cycle's calls as CSV, as cdrate reports them. */
function cdrate_calls_csv(array $params)
{
    $path = '/v1/calls?account=' . rawurlencode(cdrate_account_id($params)) . '&cycle=current&format=csv';
    list($status, $body) = cdrate_api($params, 'GET', $path, null, 'text/csv');
    if ($status !== 200 || !is_string($body)) {
        throw new RuntimeException('cdrate answered HTTP ' . $status);
    }
    return $body;
}

function cdrate_ClientAreaCustomButtonArray()
{
    return ['Download calls (CSV)' => 'DownloadCalls'];
}

/** Sends this cycle's calls as a CSV download. */
function cdrate_DownloadCalls(array $params)
{
    return cdrate_guard('DownloadCalls', $params, function () use ($params) {
        $csv = cdrate_calls_csv($params);
        if (PHP_SAPI === 'cli') {
            // Under a test harness there is no browser to send a file to.
            return 'success';
        }
        header('Content-Type: text/csv; charset=utf-8');
        header('Content-Disposition: attachment; filename="calls-' . cdrate_account_id($params) . '.csv"');
        echo $csv;
        exit;
    });
}

function cdrate_ClientArea(array $params)
{
    try {
        $id = rawurlencode(cdrate_account_id($params));
        list($status, $account) = cdrate_api($params, 'GET', '/v1/accounts/' . $id);
        if ($status !== 200 || !is_array($account)) {
            return ['templatefile' => 'templates/clientarea', 'vars' => ['error' => 'Usage is not available right now.']];
        }
        list($status, $calls) = cdrate_api($params, 'GET', '/v1/calls?account=' . $id . '&cycle=current&format=json');
        $recent = ($status === 200 && is_array($calls)) ? array_slice(array_reverse($calls['calls'] ?? []), 0, 20) : [];
        return [
            'templatefile' => 'templates/clientarea',
            'vars' => [
                'error' => '',
                'cycle' => $account['cycle']['label'] ?? '',
                'calls' => $account['usage']['calls'] ?? 0,
                'amount' => $account['usage']['amount'] ?? '0',
                'currency' => $account['usage']['currency'] ?? '',
                'status' => $account['status'] ?? '',
                'recent' => $recent,
            ],
        ];
    } catch (\Throwable $e) {
        logModuleCall('cdrate', 'ClientArea', $params['serviceid'] ?? '', $e->getMessage(), '', [cdrate_token($params)]);
        return ['templatefile' => 'templates/clientarea', 'vars' => ['error' => 'Usage is not available right now.']];
    }
}
