<?php
/**
 * The pull hook against the WHMCS fake and a running cdrate whose pull
 * account (service CDRATE_PULL_SERVICE_ID of client CDRATE_PULL_CLIENT_ID)
 * has line items of closed cycles: a cron invoice gets them once, they are
 * acknowledged, re-firing adds nothing, API invoices are left alone, and a
 * cdrate outage leaves the invoice untouched without an exception.
 */

require __DIR__ . '/harness.php';
require dirname(__DIR__, 2) . '/deploy/whmcs/includes/hooks/cdrate.php';

$service = (int) getenv('CDRATE_PULL_SERVICE_ID');
$client = (int) getenv('CDRATE_PULL_CLIENT_ID');
if (!$service || !$client) {
    echo "skipped: CDRATE_PULL_SERVICE_ID / CDRATE_PULL_CLIENT_ID not set\n";
    exit(0);
}
putenv('CDRATE_URL=' . getenv('CDRATE_URL'));
putenv('CDRATE_TOKEN=' . getenv('CDRATE_TOKEN'));

$hosting = function ($invoice, $line) use ($client, $service) {
    return ['id' => $invoice, 'userid' => $client, 'status' => 'Unpaid',
        'lines' => [['id' => $line, 'type' => 'Hosting', 'relid' => $service, 'description' => 'VoIP Trunk', 'amount' => '20.00', 'taxed' => false]]];
};
fake_seed([
    'clients' => [['id' => $client, 'currency' => 1, 'currency_code' => 'USD']],
    'services' => [['id' => $service, 'userid' => $client, 'module' => 'cdrate', 'domain' => 'pbx.example.net']],
    'invoices' => [$hosting(7001, 70010), $hosting(7002, 70020), $hosting(7003, 70030)],
]);

list($status, $usage) = cdrate_call('GET', "/v1/usage?whmcs_service_id={$service}");
$pending = $usage['items'] ?? [];
check($status === 200 && count($pending) > 0, 'cdrate has usage to pull (' . count($pending) . ' items)');

echo "an invoice created through the API is left alone\n";
run_hook('InvoiceCreation', ['source' => 'api', 'user' => 1, 'invoiceid' => 7002, 'status' => 'Unpaid']);
$inv = localAPI('GetInvoice', ['invoiceid' => 7002]);
check(count($inv['items']['item']) === 1, 'no lines added');

echo "a cdrate outage leaves the invoice untouched\n";
putenv('CDRATE_URL=http://127.0.0.1:9');
run_hook('InvoiceCreation', ['source' => 'autogen', 'user' => 'system', 'invoiceid' => 7003, 'status' => 'Unpaid']);
putenv('CDRATE_URL=' . getenv('CDRATE_URL_SAVED'));
$inv = localAPI('GetInvoice', ['invoiceid' => 7003]);
check(count($inv['items']['item']) === 1, 'no lines added, no exception');
$log = implode("\n", $GLOBALS['cdrate_test']['activity_log']);
check(strpos($log, 'unreachable') !== false, 'the failure is in the activity log');

echo "a cron invoice gets the usage once\n";
run_hook('InvoiceCreation', ['source' => 'autogen', 'user' => 'system', 'invoiceid' => 7001, 'status' => 'Unpaid']);
$inv = localAPI('GetInvoice', ['invoiceid' => 7001]);
$lines = $inv['items']['item'];
check(count($lines) === 1 + count($pending), 'one line per usage item');
$tags = cdrate_hook_tags($lines);
$all = true;
$sum = 0.0;
foreach ($pending as $item) {
    $all = $all && isset($tags[$item['id']]);
}
check($all, 'every item is on the invoice with its tag');
$expected = array_sum(array_map(function ($i) { return (float) $i['amount']; }, $pending)) + 20.0;
check(abs((float) $inv['total'] - $expected) < 0.005, "the invoice total includes the usage ({$inv['total']})");
list(, $usage) = cdrate_call('GET', "/v1/usage?whmcs_service_id={$service}");
check(($usage['items'] ?? null) === [], 'cdrate has nothing left to pull: acknowledged');

echo "re-firing the hook adds nothing\n";
run_hook('InvoiceCreation', ['source' => 'autogen', 'user' => 'system', 'invoiceid' => 7001, 'status' => 'Unpaid']);
$inv = localAPI('GetInvoice', ['invoiceid' => 7001]);
check(count($inv['items']['item']) === 1 + count($pending), 'still one line per item');
$token = (string) getenv('CDRATE_TOKEN');
$leaked = array_filter(array_merge($GLOBALS['cdrate_test']['module_log'], $GLOBALS['cdrate_test']['activity_log']), function ($l) use ($token) {
    return strpos($l, $token) !== false;
});
check(!$leaked, 'the token never reaches a log');
finish();
