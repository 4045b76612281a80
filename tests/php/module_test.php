<?php
/**
 * The server module: WHMCS's own smoke test (every function with [] returns
 * the documented type) and the account lifecycle against a running cdrate.
 */

require __DIR__ . '/harness.php';
require dirname(__DIR__, 2) . '/deploy/whmcs/modules/servers/cdrate/cdrate.php';

echo "module smoke test\n";
check(is_array(cdrate_MetaData()), 'MetaData returns an array');
check(is_array(cdrate_ConfigOptions()) && count(cdrate_ConfigOptions()) <= 24, 'ConfigOptions returns at most 24 options');
check(is_array(cdrate_ClientAreaCustomButtonArray()), 'ClientAreaCustomButtonArray returns an array');
check(is_array(cdrate_TestConnection([])), 'TestConnection([]) returns an array');
foreach (['CreateAccount', 'SuspendAccount', 'UnsuspendAccount', 'TerminateAccount', 'ChangePackage', 'DownloadCalls'] as $f) {
    check(is_string(call_user_func('cdrate_' . $f, [])), "{$f}([]) returns a string");
}
check(is_array(cdrate_ClientArea([])), 'ClientArea([]) returns an array');

echo "module lifecycle against cdrate\n";
$serviceId = 9000 + random_int(0, 99999);
$account = 'whmcs-' . $serviceId;
$params = module_params([
    'serviceid' => $serviceId,
    'userid' => 17,
    'domain' => "pbx{$serviceId}.example.net",
    'configoption1' => 'home',
    'configoption2' => '1',
    'configoption3' => '1',
    'configoption4' => '011',
    'configoption5' => 'pull',
    'configoption6' => 'freeswitch',
    'configoption7' => '50.00',
]);
$test = cdrate_TestConnection($params);
check($test['success'] === true, 'TestConnection succeeds with a good token: ' . ($test['error'] ?? ''));
$bad = cdrate_TestConnection(array_merge($params, ['serverpassword' => 'cdr_wrong']));
check($bad['success'] === false && strpos($bad['error'], '401') !== false, 'TestConnection fails with a bad token: ' . $bad['error']);

check(cdrate_CreateAccount($params) === 'success', 'CreateAccount');
list($status, $a) = cdrate_call('GET', '/v1/accounts/' . $account);
check($status === 200 && $a['plan'] === 'home' && $a['status'] === 'active', "{$account} exists on plan home");
check(($a['whmcs_service_id'] ?? null) === $serviceId && ($a['billing'] ?? '') === 'pull', 'with its WHMCS ids and billing mode');
check(($a['identities'][0]['account_key'] ?? '') === "pbx{$serviceId}.example.net", 'and the service domain as its FreeSWITCH identity');
check(cdrate_CreateAccount($params) === 'success', 'CreateAccount again is harmless');

check(cdrate_SuspendAccount(array_merge($params, ['suspendreason' => 'Overdue on Payment'])) === 'success', 'SuspendAccount');
list(, $a) = cdrate_call('GET', '/v1/accounts/' . $account);
check($a['status'] === 'suspended', 'the account is suspended');
check(cdrate_UnsuspendAccount($params) === 'success', 'UnsuspendAccount');
list(, $a) = cdrate_call('GET', '/v1/accounts/' . $account);
check($a['status'] === 'active', 'the account is active again');

check(cdrate_ChangePackage(array_merge($params, ['configoption1' => 'business'])) === 'success', 'ChangePackage');
list(, $a) = cdrate_call('GET', '/v1/accounts/' . $account);
check($a['plan'] === 'business', 'the plan is business');
$error = cdrate_ChangePackage(array_merge($params, ['configoption1' => 'nosuchplan']));
check($error !== 'success' && strpos($error, 'unknown_plan') !== false, 'an unknown plan is refused with cdrate\'s message: ' . $error);

$area = cdrate_ClientArea($params);
check(($area['templatefile'] ?? '') === 'templates/clientarea' && ($area['vars']['error'] ?? 'x') === '', 'ClientArea has usage');
check(isset($area['vars']['calls'], $area['vars']['amount'], $area['vars']['cycle']), 'with calls, amount and the cycle');
check(strpos(cdrate_calls_csv($params), 'call_id,account,start_local') === 0, 'the CSV download has the report header');
check(cdrate_DownloadCalls($params) === 'success', 'DownloadCalls');

check(cdrate_TerminateAccount($params) === 'success', 'TerminateAccount');
list(, $a) = cdrate_call('GET', '/v1/accounts/' . $account);
check($a['status'] === 'terminated', 'the account is terminated (its calls are kept)');

$token = (string) getenv('CDRATE_TOKEN');
$leaked = array_filter(array_merge($GLOBALS['cdrate_test']['module_log'], $GLOBALS['cdrate_test']['activity_log']), function ($l) use ($token) {
    return strpos($l, $token) !== false;
});
check($token !== '' && !$leaked, 'the token never reaches a log');
finish();
