# numbers.online caller toast for MicroSIP, through a local `nol serve`.
# MicroSIP runs numbers-online-lookup.bat with the caller's number on each incoming call.
# The LOCAL nol serve token comes from the NOL_SERVE_TOKEN user environment variable (never
# stored in this file); the numbers.online API key stays inside nol serve. It fails open (any
# error: no toast, exit 0) and logs nothing.
param([string]$Number)
$ErrorActionPreference = 'Stop'
try {
    $token = [Environment]::GetEnvironmentVariable('NOL_SERVE_TOKEN', 'User')
    if (-not $token) { $token = $env:NOL_SERVE_TOKEN }
    $base = $env:NOL_SERVE_URL
    if (-not $base) { $base = 'http://127.0.0.1:8088' }
    # MicroSIP passes what the SIP From carried: keep digits and a leading +.
    $n = ($Number -replace '^sips?:', '' -replace '@.*$', '')
    $n = ($n -replace '[^\d+]', '')
    if (-not $token -or -not $n) { exit 0 }
    $body = @{ number = $n; country = $env:NOL_DEFAULT_COUNTRY } | ConvertTo-Json -Compress
    $r = Invoke-RestMethod -Method Post -Uri "$base/api/v1/inbound/lookup" -TimeoutSec 2 `
        -Headers @{ Authorization = "Bearer $token" } -ContentType 'application/json' -Body $body
    if ($r.fail_open) { exit 0 }
    # The name only on a verified hit (with nol serve's risk tag when configured); else the number.
    $title = if ($r.caller_name) { $r.caller_name } else { $n }
    $risk = if ($r.risk_level) { "risk: $($r.risk_level)" } else { 'no record' }
    $line = "line type: unknown   $risk   (supplementary signal)"
    [Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, ContentType = WindowsRuntime] | Out-Null
    $xml = [Windows.UI.Notifications.ToastNotificationManager]::GetTemplateContent(
        [Windows.UI.Notifications.ToastTemplateType]::ToastText02)
    $texts = $xml.GetElementsByTagName('text')
    $texts.Item(0).AppendChild($xml.CreateTextNode($title)) | Out-Null
    $texts.Item(1).AppendChild($xml.CreateTextNode($line)) | Out-Null
    $toast = [Windows.UI.Notifications.ToastNotification]::new($xml)
    [Windows.UI.Notifications.ToastNotificationManager]::CreateToastNotifier('numbers.online').Show($toast)
} catch {
    # Fail open: nothing shown, nothing logged.
}
exit 0
