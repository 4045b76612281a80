{* cdrate: this billing cycle's usage so far and the latest calls. *}
{if $error}
  <div class="alert alert-warning">{$error}</div>
{else}
  <h3>Usage {$cycle}</h3>
  <p>{$calls} calls, {$amount} {$currency}{if $status ne 'active'} &mdash; account {$status}{/if}</p>
  <table class="table table-striped">
    <thead><tr><th>Time</th><th>Number</th><th>Destination</th><th>Duration (s)</th><th>Charged (s)</th><th>Cost</th></tr></thead>
    <tbody>
    {foreach from=$recent item=call}
      <tr><td>{$call.start_local}</td><td>{$call.number}</td><td>{$call.destination}</td><td>{$call.duration_s}</td><td>{$call.charged_seconds}</td><td>{$call.cost} {$call.currency}</td></tr>
    {/foreach}
    </tbody>
  </table>
{/if}
