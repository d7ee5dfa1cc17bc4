<?php
/**
 * A minimal stand-in for CID Superfecta's base class, enough to run the shipped source module
 * as Superfecta would: load the file, make the class, call get_caller_id() with the source's
 * parameters.
 *
 * usage: php superfecta_standin.php MODULE BASE_URL TOKEN NUMBER [COUNTRY]
 * prints the caller name (empty for none) between brackets, and the time taken in ms.
 */
class superfecta_base
{
    public $debug = false;
    public $thenumber;
    public function DebugPrint($message)
    {
        if ($this->debug) {
            fwrite(STDERR, $message . "\n");
        }
    }
    public function isDebug($level = 1)
    {
        return $this->debug;
    }
}

list(, $module, $base, $token, $number) = $argv;
$country = isset($argv[5]) ? $argv[5] : '';
require $module;
$source = new NumbersOnline();
$params = array();
foreach ($source->source_param as $name => $p) {
    $params[$name] = $p['default'];
}
$params['Server_URL'] = $base;
$params['API_Key'] = $token;
$params['Country'] = $country;
$start = microtime(true);
$name = $source->get_caller_id($number, $params);
printf("[%s] %d\n", $name, (int) ((microtime(true) - $start) * 1000));
