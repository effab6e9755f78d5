	IøŠ™¦ÃÚA*

layer0/lossß³ß?