<?php
/**
 * A stand-in for WHMCS (API.md §8): enough of its runtime to load and run
 * cdrate's hook and server module under php-cli. add_hook/run_hook keep and
 * fire callbacks by priority, localAPI forwards to the WHMCS contract fake
 * over HTTP, and the logging helpers write to in-memory logs a test can
 * inspect (for example, that no secret reached them).
 */

define('WHMCS', true);
define('ROOTDIR', dirname(__DIR__, 2));

$GLOBALS['cdrate_test'] = [
    'hooks' => [],
    'seq' => 0,
    'local_api_calls' => [],
    'module_log' => [],
    'activity_log' => [],
];

function add_hook($hookPoint, $priority, $function)
{
    $GLOBALS['cdrate_test']['hooks'][$hookPoint][] = [(int) $priority, $GLOBALS['cdrate_test']['seq']++, $function];
}

/** Fires a hook point: ascending priority, ties in registration order. */
function run_hook($hookPoint, array $vars)
{
    $hooks = $GLOBALS['cdrate_test']['hooks'][$hookPoint] ?? [];
    usort($hooks, function ($a, $b) {
        return [$a[0], $a[1]] <=> [$b[0], $b[1]];
    });
    $results = [];
    foreach ($hooks as $hook) {
        // A real hook must not throw: let it fail the test.
        $results[] = call_user_func($hook[2], $vars);
    }
    return $results;
}

function fake_url()
{
    return rtrim((string) getenv('WHMCS_FAKE_URL'), '/');
}

function http_request($method, $url, $body = null, array $headers = [])
{
    $ch = curl_init($url);
    curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
    curl_setopt($ch, CURLOPT_TIMEOUT, 20);
    curl_setopt($ch, CURLOPT_CUSTOMREQUEST, $method);
    if ($body !== null) {
        curl_setopt($ch, CURLOPT_POSTFIELDS, $body);
    }
    curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
    $raw = curl_exec($ch);
    $status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    curl_close($ch);
    return [$status, $raw === false ? '' : $raw];
}

/** localAPI(): the External API of the fake, with the test credentials. */
function localAPI($command, $postData = [], $adminUsername = '')
{
    $fields = array_merge($postData, [
        'action' => $command,
        'identifier' => getenv('WHMCS_FAKE_IDENTIFIER') ?: 'cdrate-test-identifier',
        'secret' => getenv('WHMCS_FAKE_SECRET') ?: 'cdrate-test-secret',
        'responsetype' => 'json',
    ]);
    list(, $raw) = http_request('POST', fake_url() . '/includes/api.php', http_build_query($fields),
        ['Content-Type: application/x-www-form-urlencoded']);
    $decoded = json_decode($raw, true);
    $result = is_array($decoded) ? $decoded : ['result' => 'error', 'message' => 'unreadable answer'];
    $GLOBALS['cdrate_test']['local_api_calls'][] = [$command, $postData, $result];
    return $result;
}

function logModuleCall($module, $action, $requestString, $responseData, $processedData = '', $replaceVars = [])
{
    $entry = implode(' | ', array_map(function ($v) {
        return is_string($v) ? $v : json_encode($v);
    }, [$module, $action, $requestString, $responseData, $processedData]));
    foreach ((array) $replaceVars as $secret) {
        if ((string) $secret !== '') {
            $entry = str_replace((string) $secret, '***', $entry);
        }
    }
    $GLOBALS['cdrate_test']['module_log'][] = $entry;
}

function logActivity($message, $clientId = 0)
{
    $GLOBALS['cdrate_test']['activity_log'][] = $message;
}

/** Seeds the fake (clients, services, invoices). */
function fake_seed(array $seed)
{
    list($status, $raw) = http_request('POST', fake_url() . '/_fake/seed', json_encode($seed), ['Content-Type: application/json']);
    check($status === 200, 'seeding the fake: ' . $raw);
}

/** The `$params` WHMCS hands module functions (API.md §5.3). */
function module_params(array $overrides = [])
{
    $cdrate = parse_url((string) getenv('CDRATE_URL'));
    $params = [
        'serviceid' => 0, 'userid' => 0, 'pid' => 1, 'serverid' => 1, 'domain' => '', 'username' => '', 'password' => '',
        'producttype' => 'other', 'moduletype' => 'cdrate',
        'clientsdetails' => ['firstname' => 'Ada', 'lastname' => 'Line', 'email' => 'ada@example.net', 'currency_code' => 'USD'],
        'customfields' => [], 'configoptions' => [], 'server' => true,
        'serverip' => $cdrate['host'] ?? '', 'serverhostname' => $cdrate['host'] ?? '', 'serverport' => (string) ($cdrate['port'] ?? ''),
        'serverusername' => '', 'serverpassword' => (string) getenv('CDRATE_TOKEN'), 'serveraccesshash' => '',
        'serversecure' => ($cdrate['scheme'] ?? 'http') === 'https', 'serverhttpprefix' => $cdrate['scheme'] ?? 'http',
        'model' => new FakeServiceModel(),
    ];
    for ($i = 1; $i <= 24; $i++) {
        $params['configoption' . $i] = '';
    }
    return array_merge($params, $overrides);
}

/** `$params['model']` with serviceProperties backed by an array. */
class FakeServiceModel
{
    public $serviceProperties;

    public function __construct()
    {
        $this->serviceProperties = new class {
            private $values = [];

            public function get($name)
            {
                return $this->values[$name] ?? null;
            }

            public function save(array $values)
            {
                $this->values = array_merge($this->values, $values);
            }
        };
    }
}

$GLOBALS['cdrate_failures'] = 0;

function check($condition, $what)
{
    if ($condition) {
        echo "  ok   {$what}\n";
    } else {
        $GLOBALS['cdrate_failures']++;
        echo "  FAIL {$what}\n";
    }
}

function finish()
{
    $failed = $GLOBALS['cdrate_failures'];
    echo $failed ? "{$failed} check(s) failed\n" : "all checks passed\n";
    exit($failed ? 1 : 0);
}

/** A request to cdrate with the test token: [status, decoded JSON]. */
function cdrate_call($method, $path, $body = null, $token = null)
{
    $token = $token ?? (string) getenv('CDRATE_TOKEN');
    $headers = ['Authorization: Bearer ' . $token];
    if ($body !== null) {
        $headers[] = 'Content-Type: application/json';
        $body = json_encode($body);
    }
    list($status, $raw) = http_request($method, rtrim((string) getenv('CDRATE_URL'), '/') . $path, $body, $headers);
    return [$status, json_decode($raw, true)];
}
