@echo off
rem MicroSIP cmdIncomingCall wrapper: runs the lookup without a window, never blocks MicroSIP.
start "" /b powershell.exe -NoProfile -NonInteractive -WindowStyle Hidden -ExecutionPolicy Bypass -File "%~dp0NumbersOnlineLookup.ps1" -Number "%~1"
exit /b 0
