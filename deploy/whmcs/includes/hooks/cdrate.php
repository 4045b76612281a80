<?php
/**
 * cdrate usage pull hook for WHMCS.
 *
 * When the WHMCS cron generates a renewal invoice (InvoiceCreation with
 * source=autogen), this hook asks cdrate for the closed-cycle usage of each
 * VoIP service on the invoice (GET /v1/usage?whmcs_service_id=…), adds the
 * lines with UpdateInvoice, and then acknowledges them to cdrate with the
 * invoice id (POST /v1/usage/ack), so the same usage is never billed twice.
 *
 * Install: copy to <whmcs>/includes/hooks/cdrate.php and define, in
 * <whmcs>/configuration.php (or the web server's environment):
 *     define('CDRATE_URL', 'https://cdrate.example.net');
 *     define('CDRATE_TOKEN', 'cdr_…');   // `cdrate token create --scope billing`
 * Optional: CDRATE_TAXED (1 or 0, default 1), CDRATE_TIMEOUT (seconds, 10).
 *
 * Accounts billed by push (cdrate calls the WHMCS API itself) answer 409
 * and are skipped; invoices created through the API (source=api, e.g. by
 * cdrate's own push) or by hand are skipped: only cron renewals carry the
 * service lines this hook keys on (API.md §4.3).
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

/** A setting: a PHP constant wins over an environment variable. */
function cdrate_hook_setting($name, $default = null)
{
    if (defined($name)) {
        return constant($name);
    }
    $value = getenv($name);
    return ($value === false || $value === '') ? $default : $value;
}

/** WHMCS's outcome field: `result`, else `status` (API.md §1.4). */
function cdrate_hook_ok($response)
{
    return is_array($response) && (($response['result'] ?? ($response['status'] ?? '')) === 'success');
}

/**
 * One request to cdrate: [HTTP status (0 = no answer), decoded JSON or null].
 * Short timeouts: this runs inside the WHMCS cron.
 */
function cdrate_hook_request($method, $path, $body = null)
{
    $url = rtrim((string) cdrate_hook_setting('CDRATE_URL', ''), '/') . $path;
    $timeout = (int) cdrate_hook_setting('CDRATE_TIMEOUT', 10);
    $headers = ['Accept: application/json', 'Authorization: Bearer ' . cdrate_hook_setting('CDRATE_TOKEN', '')];
    $ch = curl_init($url);
    curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
    curl_setopt($ch, CURLOPT_CONNECTTIMEOUT, min(3, $timeout));
    curl_setopt($ch, CURLOPT_TIMEOUT, $timeout);
    curl_setopt($ch, CURLOPT_CUSTOMREQUEST, $method);
    if ($body !== null) {
        $headers[] = 'Content-Type: application/json';
        curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($body));
    }
    curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
    $raw = curl_exec($ch);
    $status = $raw === false ? 0 : (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    $error = $raw === false ? curl_error($ch) : '';
    curl_close($ch);
    $decoded = is_string($raw) ? json_decode($raw, true) : null;
    if ($status === 0) {
        throw new RuntimeException("cdrate unreachable at {$url}: {$error}");
    }
    return [$status, is_array($decoded) ? $decoded : null];
}

/** The item ids of every `[cdrate:<id>]` tag already on the invoice. */
function cdrate_hook_tags(array $items)
{
    $tags = [];
    foreach ($items as $item) {
        if (preg_match_all('/\[cdrate:([^\]]+)\]/', (string) ($item['description'] ?? ''), $m)) {
            foreach ($m[1] as $id) {
                $tags[$id] = true;
            }
        }
    }
    return $tags;
}

function cdrate_invoice_creation($vars)
{
    $invoiceId = (int) ($vars['invoiceid'] ?? 0);
    $token = (string) cdrate_hook_setting('CDRATE_TOKEN', '');
    try {
        if (($vars['source'] ?? '') !== 'autogen') {
            // API invoices (cdrate's own push among them) and hand-made ones
            // do not carry the renewal's service lines yet.
            return;
        }
        if (cdrate_hook_setting('CDRATE_URL', '') === '' || $token === '') {
            logActivity('cdrate: CDRATE_URL and CDRATE_TOKEN are not set; usage not added to invoice ' . $invoiceId);
            return;
        }
        $invoice = localAPI('GetInvoice', ['invoiceid' => $invoiceId]);
        if (!cdrate_hook_ok($invoice)) {
            logActivity('cdrate: cannot read invoice ' . $invoiceId . ': ' . ($invoice['message'] ?? 'unknown error'));
            return;
        }
        $items = $invoice['items']['item'] ?? [];
        $items = is_array($items) ? $items : [];
        $onInvoice = cdrate_hook_tags($items);
        $services = [];
        foreach ($items as $item) {
            if (($item['type'] ?? '') === 'Hosting' && (int) ($item['relid'] ?? 0) > 0) {
                $services[(int) $item['relid']] = true;
            }
        }
        if (!$services) {
            return;
        }
        $client = localAPI('GetClientsDetails', ['clientid' => (int) $invoice['userid']]);
        $clientCurrency = $client['client']['currency_code'] ?? ($client['currency_code'] ?? null);
        $taxed = (int) cdrate_hook_setting('CDRATE_TAXED', 1) ? 1 : 0;
        $new = ['newitemdescription' => [], 'newitemamount' => [], 'newitemtaxed' => []];
        $ack = [];
        $now = gmdate('Y-m-d\TH:i:s\Z');
        foreach (array_keys($services) as $serviceId) {
            list($status, $usage) = cdrate_hook_request('GET', '/v1/usage?whmcs_service_id=' . $serviceId . '&to=' . urlencode($now));
            logModuleCall('cdrate', 'GetUsage', 'service ' . $serviceId, json_encode($usage), '', [$token]);
            if ($status === 404 || $status === 409) {
                // Not a cdrate service, or billed by push: nothing to pull.
                continue;
            }
            if ($status !== 200 || !is_array($usage)) {
                logActivity('cdrate: usage of service ' . $serviceId . ' unavailable (HTTP ' . $status . '); left for the next invoice');
                continue;
            }
            if ($clientCurrency !== null && ($usage['currency'] ?? '') !== $clientCurrency) {
                logActivity('cdrate: service ' . $serviceId . ' usage is in ' . ($usage['currency'] ?? '?')
                    . ' but the client is billed in ' . $clientCurrency . '; not added');
                continue;
            }
            foreach (($usage['items'] ?? []) as $item) {
                $id = (string) ($item['id'] ?? '');
                if ($id === '') {
                    continue;
                }
                $ack[] = $id;
                if (isset($onInvoice[$id])) {
                    // Added by an earlier run that died before its ack.
                    continue;
                }
                $new['newitemdescription'][] = (string) $item['description'];
                $new['newitemamount'][] = (string) $item['amount'];
                $new['newitemtaxed'][] = $taxed;
            }
        }
        if ($new['newitemdescription']) {
            $update = localAPI('UpdateInvoice', ['invoiceid' => $invoiceId] + $new);
            if (!cdrate_hook_ok($update)) {
                logActivity('cdrate: UpdateInvoice ' . $invoiceId . ' failed: ' . ($update['message'] ?? 'unknown error')
                    . '; usage left for the next invoice');
                return;
            }
        }
        if ($ack) {
            list($status, $answer) = cdrate_hook_request('POST', '/v1/usage/ack', ['invoice_id' => $invoiceId, 'items' => $ack]);
            logModuleCall('cdrate', 'AckUsage', json_encode($ack), json_encode($answer), '', [$token]);
            if ($status !== 200) {
                logActivity('cdrate: acknowledging usage on invoice ' . $invoiceId . ' answered HTTP ' . $status
                    . ' (' . ($answer['code'] ?? '') . ')');
            }
        }
    } catch (\Throwable $e) {
        // A hook must never break the cron run; the usage stays un-acked.
        logActivity('cdrate: usage not added to invoice ' . $invoiceId . ': ' . str_replace($token, '***', $e->getMessage()));
    }
}

add_hook('InvoiceCreation', 1, 'cdrate_invoice_creation');
